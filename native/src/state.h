// What a Connection or Domain wrapper owns. Only the JS thread reads or changes these; workers
// get their own libvirt references taken from them on the JS thread.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "handles.h"

namespace strata {

struct DomState;
struct Fanout;

struct ConnState {
  ConnRef ref;
  // Atomic: a registration landing on a worker thread checks whether close() came meanwhile.
  std::atomic<bool> closed{false};
  bool readOnly = false;
  std::vector<std::weak_ptr<DomState>> domains;  // released when the connection closes
  // Event listeners: one libvirt registration per "eventID:uuid" key, fanned out to JS IDs.
  std::map<std::string, Fanout*> fanouts;
  std::map<int, std::string> listenerKeys;
  int nextListenerId = 1;
  bool closeCallbackRegistered = false;
};

struct DomState {
  DomRef ref;
  std::shared_ptr<ConnState> conn;
  bool usable() const { return ref && !conn->closed; }
};

}  // namespace strata
