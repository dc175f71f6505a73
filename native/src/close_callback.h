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

#include "state.h"

namespace strata {

struct CloseCallback {
  Napi::ThreadSafeFunction tsfn;
};

// First come, first served across worker threads: a ticket is taken on the JS thread in call
// order; a worker waits for its turn. libuv's pool starts work in queue order, so a waiting
// worker never holds up the one before it.
class OpSequence {
 public:
  uint64_t Take() { return next_++; }
  void Wait(uint64_t ticket) {
    std::unique_lock<std::mutex> lock(mutex_);
    turn_.wait(lock, [&] { return serving_ == ticket; });
  }
  void Done() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      serving_++;
    }
    turn_.notify_all();
  }

 private:
  uint64_t next_ = 0;  // JS thread only
  std::mutex mutex_;
  std::condition_variable turn_;
  uint64_t serving_ = 0;
};

Napi::Promise RegisterCloseCallback(Napi::Env env, const std::shared_ptr<ConnState>& conn, Napi::Function callback);
Napi::Promise UnregisterCloseCallback(Napi::Env env, const std::shared_ptr<ConnState>& conn);

// For close(): runs on the close worker, in turn; unregisters and frees the callback, if any.
void DropCloseCallback(virConnectPtr conn, const std::shared_ptr<CloseCallback>& callback);

}  // namespace strata
