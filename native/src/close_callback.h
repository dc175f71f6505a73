// The connection's close callback. The addon owns its data (libvirt gets no free callback):
// in-process drivers accept a registration and never free it, which leaked each one. Register,
// unregister and close run in the order they were called, since each is a worker-thread RPC and
// an unregister overtaking its register would leave libvirt holding a callback Strata forgot.
#pragma once

#include <napi.h>

#include <memory>

#include "state.h"

namespace strata {

struct CloseCallback {
  Napi::ThreadSafeFunction tsfn;
};

Napi::Promise RegisterCloseCallback(Napi::Env env, const std::shared_ptr<ConnState>& conn, Napi::Function callback);
Napi::Promise UnregisterCloseCallback(Napi::Env env, const std::shared_ptr<ConnState>& conn);

// For close(): runs on the close worker, in turn; unregisters and frees the callback, if any.
void DropCloseCallback(virConnectPtr conn, const std::shared_ptr<CloseCallback>& callback);

}  // namespace strata
