// One libvirt registration per (event, domain) on a connection, shared by every JS listener of
// it. libvirt refuses a second registration of the same C callback for the same event and
// domain ("event callback already tracked"), so the fan-out happens here, each JS listener
// keeping an ID of its own.
#pragma once

#include <libvirt/libvirt.h>
#include <napi.h>

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "state.h"
#include "typed_params.h"

namespace strata {

struct EventPayload {
  int eventID = 0;
  std::string domainName;
  std::string domainUUID;
  Fields fields;
};

void CallEventListener(Napi::Env env, Napi::Function callback, std::nullptr_t*, EventPayload* payload);
using EventTsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, EventPayload, CallEventListener>;

// Owned by libvirt once registered (freed by its free callback), else by the registering code.
struct Fanout {
  explicit Fanout(int id) : eventID(id) {}
  const int eventID;
  std::mutex mutex;
  std::vector<std::pair<int, EventTsfn>> listeners;  // guarded by mutex

  // JS thread only.
  int libvirtId = -1;
  std::vector<std::pair<int, Napi::Promise::Deferred>> waiters;

  // Event-loop thread: one copy of the payload per listener.
  void Deliver(const EventPayload& payload);
  // Releases every listener's thread-safe function; true when one was removed.
  void ReleaseAll();
  bool Remove(int listenerId);
};

// The libvirt callback for an event ID, or nullptr when this binding does not deliver it.
virConnectDomainEventGenericCallback CallbackFor(int eventID);

Napi::Promise RegisterDomainEvent(Napi::Env env, const std::shared_ptr<ConnState>& conn, DomRef dom, int eventID,
                                  Napi::Function callback);
Napi::Promise DeregisterDomainEvent(Napi::Env env, const std::shared_ptr<ConnState>& conn, int listenerId);

// On close: releases every listener and returns the libvirt registrations to drop.
std::vector<int> DetachAllEvents(ConnState& conn);

}  // namespace strata
