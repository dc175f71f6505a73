// The connection's close callback. The addon owns its data (libvirt gets no free callback):
// in-process drivers accept a registration and never free it, which leaked each one. Register,
// unregister and close run in the order they were called, since each is a worker-thread RPC and
// an unregister overtaking its register would leave libvirt holding a callback Strata forgot.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <utility>

#include "state.h"

namespace strata {

struct CloseCallback {
  Napi::ThreadSafeFunction tsfn;
};

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

Napi::Promise RegisterCloseCallback(Napi::Env env, const std::shared_ptr<ConnState>& conn, Napi::Function callback);
Napi::Promise UnregisterCloseCallback(Napi::Env env, const std::shared_ptr<ConnState>& conn);

// For close(): runs on the close worker, in turn; unregisters and frees the callback, if any.
void DropCloseCallback(virConnectPtr conn, const std::shared_ptr<CloseCallback>& callback);

}  // namespace strata
