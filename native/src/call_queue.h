// The addon's own threads for blocking libvirt calls, one queue per environment.
//
// Why not one Napi::AsyncWorker per call on libuv's pool: each call then pays an async work
// item, an async resource and a wake-up of a parked pool thread, and a stuck libvirtd can fill
// the 4 threads that `fs`, `dns` and `zlib` share. Here workers are kept, parked when idle (the
// most recently used is woken first; those beyond two exit after a while). Finished calls go
// back to the JS thread through one libuv async handle, whose callback settles every call
// finished by then. Not a napi_threadsafe_function: Node signals the loop while holding that
// function's mutex, which the JS thread it wakes then waits for (measured: ~7 us more per call
// from a call's end to its settling).
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstddef>
#include <memory>

namespace strata {

// One blocking call: Run() on a worker thread (must not touch N-API), Settle() on the JS thread.
// When the environment goes before it is settled, Abandon() runs on the JS thread instead (it must
// not throw), and the call is then destroyed on another thread: what it holds of libvirt may be a
// connection's last reference.
class QueuedCall {
 public:
  virtual ~QueuedCall() = default;
  virtual void Run() = 0;
  virtual void Settle(Napi::Env env) = 0;
  virtual void Abandon(Napi::Env env) = 0;

  QueuedCall* next = nullptr;  // the queue's list of finished calls
};

class CallQueue {
 public:
  explicit CallQueue(Napi::Env env);
  ~CallQueue();
  CallQueue(const CallQueue&) = delete;
  CallQueue& operator=(const CallQueue&) = delete;

  // JS thread only. While any call is outstanding the queue keeps the event loop alive, as a
  // pending Promise from an AsyncWorker did.
  void Submit(std::unique_ptr<QueuedCall> call);

  // The environment's cleanup hook: no call is taken or settled any more; those not started and
  // those finished but unsettled are abandoned. Calls still running are left to the process's end
  // (their Promise can no longer be settled, and only the JS thread may free it).
  void Shutdown();

  struct Shared;

 private:
  static void OnWake(uv_async_t* handle);
  void SettleFinished();

  Napi::Env env_;
  std::shared_ptr<Shared> shared_;
  Napi::AsyncContext context_;
  size_t outstanding_ = 0;
};

}  // namespace strata
