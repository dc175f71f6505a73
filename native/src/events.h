// libvirt callbacks (run on the event-loop thread) copy what they are given into plain data and
// hand it to JS through a thread-safe function; libvirt's free callback releases that function.
#pragma once

#include <napi.h>

#include <memory>

#include "state.h"

namespace strata {

// Throws a RangeError for an event ID this binding does not deliver.
void CheckEventIsBound(Napi::Env env, int eventID);

}  // namespace strata
