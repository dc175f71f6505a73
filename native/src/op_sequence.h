// One connection's operations in the order they were made: event and close-callback
// (de)registrations and close always, and on a connection over a network link every call. Each
// waits for its turn on a worker thread, and its libvirt call runs alone on that connection.
//
// Why one at a time over a link: libvirt 9.0's RPC client (virNetClientIOEventLoop) corrupts
// memory when two threads call on one connection and it is declared dead under them. The thread
// doing a call's I/O watches the socket with a GSource whose callback data lives on its own stack;
// when the wait is ended by something else (another thread queuing a call, a keepalive ping, the
// keepalive declaring the peer dead), that source stays attached, unreferenced but never
// destroyed. If the thread then leaves with an error (the connection dead) while another thread
// still waits for the socket, that one's next wait fires the stale source as soon as the socket
// stirs (data, or the hang-up of a cut link), and the callback writes into the first thread's
// stack and reads a client pointer from it: by then that thread is elsewhere, in another call
// (often the reconnection's virConnectOpen). Node died with SIGSEGV in
// test/faults/35-remote-cut.test.ts that way, at the cut after a 30 s silent link. With one call
// at a time there is never a second thread waiting on the socket: a connection declared dead is
// closed as soon as its one call leaves, and a source left by a ping is fired within the same
// call (the socket stirs before that call can end).
//
// A local daemon's UNIX socket keeps its calls overlapping: a silent link is what declares a peer
// dead while calls wait, and a local daemon that dies closes its socket at once, which fails every
// waiting call together (test/core/30-restart and test/faults/40-libvirtd-killed, many runs). One
// call at a time there would make a host's model wait on each call's round trip and let one
// domain's slow call (a busy QEMU monitor, up to 30 s) hold up every other call to that host.
// Perhaps still exposed: a local daemon that stops answering for the keepalive's 15 s, then answers.
//
// The order matters to close-callback and event (de)registrations too: an unregister overtaking
// its register would leave libvirt holding a callback Strata forgot.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <utility>

namespace strata {

// First come, first served across worker threads: a ticket is taken on the JS thread in call
// order, right before the call is submitted; a worker waits for its turn. The call queue starts
// calls in submission order, so a waiting worker never holds up the one before it. A ticket whose
// call never runs (its environment stopped first) is given up, so later ones are not stuck.
class OpSequence {
 public:
  uint64_t Take() { return next_++; }
  void Wait(uint64_t ticket) {
    std::unique_lock<std::mutex> lock(mutex_);
    turn_.wait(lock, [&] { return serving_ == ticket; });
  }
  void Done() { Finish(serving_); }
  void GiveUp(uint64_t ticket) { Finish(ticket); }

  // Set once on the JS thread before the connection's first call, read there: whether every call
  // takes a turn (a connection over a network link), or only the operations that need their order.
  bool serialCalls = false;

 private:
  void Finish(uint64_t ticket) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_.insert(ticket);
      while (finished_.erase(serving_) > 0) serving_++;
    }
    turn_.notify_all();
  }

  uint64_t next_ = 0;  // JS thread only
  std::mutex mutex_;
  std::condition_variable turn_;
  uint64_t serving_ = 0;
  std::set<uint64_t> finished_;
};

// One operation's place in a connection's OpSequence: taken on the JS thread, waited for and
// finished on a worker, given up if the operation is dropped without running.
class Turn {
 public:
  explicit Turn(std::shared_ptr<OpSequence> ops) : ops_(std::move(ops)), ticket_(ops_->Take()) {}
  Turn(Turn&& other) noexcept : ops_(std::move(other.ops_)), ticket_(other.ticket_) {}
  Turn(const Turn&) = delete;
  Turn& operator=(const Turn&) = delete;
  Turn& operator=(Turn&&) = delete;
  ~Turn() {
    if (ops_) ops_->GiveUp(ticket_);
  }
  void Wait() { ops_->Wait(ticket_); }
  void Done() {
    ops_->Done();
    ops_.reset();
  }

 private:
  std::shared_ptr<OpSequence> ops_;
  uint64_t ticket_;
};

}  // namespace strata
