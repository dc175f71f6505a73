// What a Connection or Domain wrapper owns. Only the JS thread reads or changes these; workers
// get their own libvirt references taken from them on the JS thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "handles.h"

namespace strata {

struct CloseCallback;
class OpSequence;
struct DomState;
struct Fanout;
struct SnapshotState;

struct ConnState {
  ConnRef ref;
  // Atomic: a registration landing on a worker thread checks whether close() came meanwhile.
  std::atomic<bool> closed{false};
  bool readOnly = false;
  std::vector<std::weak_ptr<DomState>> domains;        // released when the connection closes
  std::vector<std::weak_ptr<SnapshotState>> snapshots;  // likewise: a snapshot holds its domain
  // Dead weak entries are pruned when a list has doubled since the last pruning, so adding a
  // handle stays cheap with many alive.
  size_t domainsPruneAt = 64;
  size_t snapshotsPruneAt = 64;
  // Event listeners: one libvirt registration per "eventID:uuid" key, fanned out to JS IDs.
  std::map<std::string, Fanout*> fanouts;
  std::map<int, std::string> listenerKeys;
  int nextListenerId = 1;
  std::shared_ptr<CloseCallback> closeCallback;
  // Every call on this connection, each an RPC on a worker thread, reaches libvirt in the order it
  // was made and alone (see op_sequence.h).
  std::shared_ptr<OpSequence> ops;

  ConnState();
  // A connection collected without close() is closed on a thread of its own, never on the JS
  // thread: closing a remote connection whose host is gone blocks until keepalive gives up.
  ~ConnState();
  ConnState(const ConnState&) = delete;
  ConnState& operator=(const ConnState&) = delete;
};

// The handle is declared after its parent so it is freed first: the parent's destructor then
// drops the connection's last libvirt reference, off the JS thread.
struct DomState {
  std::shared_ptr<ConnState> conn;
  DomRef ref;
  bool usable() const { return ref && !conn->closed; }
};

struct SnapshotState {
  std::shared_ptr<DomState> dom;
  SnapshotRef ref;
};

// Prunes expired entries when the list has doubled since the last time.
template <typename T>
void TrackWeak(std::vector<std::weak_ptr<T>>& list, size_t& pruneAt, const std::shared_ptr<T>& item) {
  if (list.size() >= pruneAt) {
    std::erase_if(list, [](const std::weak_ptr<T>& w) { return w.expired(); });
    pruneAt = std::max<size_t>(64, list.size() * 2);
  }
  list.push_back(item);
}

}  // namespace strata
