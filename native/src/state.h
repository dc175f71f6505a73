// What a Connection or Domain wrapper owns. Only the JS thread reads or changes these; workers
// get their own libvirt references taken from them on the JS thread.
#pragma once

#include <memory>
#include <set>
#include <vector>

#include "handles.h"

namespace strata {

struct EventRegistration;
struct CloseRegistration;
struct DomState;

struct ConnState {
  ConnRef ref;
  bool closed = false;
  bool readOnly = false;
  std::vector<std::weak_ptr<DomState>> domains;  // released when the connection closes
  std::set<int> eventCallbacks;                  // deregistered when the connection closes
  bool closeCallbackRegistered = false;
};

struct DomState {
  DomRef ref;
  std::shared_ptr<ConnState> conn;
  bool usable() const { return ref && !conn->closed; }
};

}  // namespace strata
