#include "call_queue.h"

#include <uv.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>


namespace strata {

namespace {

// Enough for calls on many hosts to wait on stuck daemons (libvirtd gives up on a QEMU monitor
// after 30 s) while others go on.
constexpr int kMaxThreads = 32;
// Workers beyond this many exit after kIdleExit without work.
constexpr int kKeepThreads = 2;
constexpr auto kIdleExit = std::chrono::seconds(10);

// A worker's place to sleep. Owned by the queue, not by the thread, so Submit() may notify one
// after unlocking (notifying under the lock makes the woken worker block on it at once) even if
// that worker has meanwhile moved on; a stray notification only makes a waiter recheck.
struct Parked {
  std::condition_variable cv;
  bool woken = false;
};

}  // namespace

struct CallQueue::Shared {
  std::mutex mutex;  // guards what follows, up to `finished`
  std::deque<QueuedCall*> pending;
  // Most recently parked last: it is woken first, its caches are the warmest.
  std::vector<Parked*> parked;
  std::vector<std::unique_ptr<Parked>> places;
  std::vector<Parked*> freePlaces;
  int threads = 0;
  int running = 0;  // threads between taking a call and handing it back
  bool stopping = false;

  // Finished calls, newest first, linked through QueuedCall::next. Lock-free, so the JS thread
  // taking them never waits for a worker that has just woken it.
  std::atomic<QueuedCall*> finished{nullptr};

  // The JS thread's wake-up handle; null once the environment is torn down. Workers signal it
  // with `wakeMutex` held; only the JS thread changes it, also with `wakeMutex` held.
  std::mutex wakeMutex;
  uv_async_t* async = nullptr;

  // JS thread: no more calls are taken or settled; parked workers exit.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(wakeMutex);
      async = nullptr;
    }
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
    for (Parked* p : parked) p->cv.notify_one();
  }

  QueuedCall* TakeLocked() {
    if (stopping || pending.empty()) return nullptr;
    QueuedCall* call = pending.front();
    pending.pop_front();
    running++;
    return call;
  }

  // Called with `mutex` held. Returns nullptr when the thread should exit (the queue stops, or it
  // idled long enough), and then no longer counts it.
  QueuedCall* NextLocked(std::unique_lock<std::mutex>& lock, Parked& self) {
    for (;;) {
      if (stopping) break;
      if (QueuedCall* call = TakeLocked()) return call;
      self.woken = false;
      parked.push_back(&self);
      bool signalled = self.cv.wait_for(lock, kIdleExit, [&] { return self.woken || stopping; });
      // Submit() takes the worker it wakes off the list; any other way out leaves it there.
      if (!self.woken) std::erase(parked, &self);
      if (!signalled && threads > kKeepThreads) break;
    }
    threads--;
    return nullptr;
  }

  void Finish(QueuedCall* call) {
    call->next = finished.load(std::memory_order_relaxed);
    while (!finished.compare_exchange_weak(call->next, call, std::memory_order_release, std::memory_order_relaxed)) {
    }
    // Only the call that found the list empty wakes the JS thread: one wake-up settles every call
    // finished until it runs.
    if (call->next != nullptr) return;
    std::lock_guard<std::mutex> lock(wakeMutex);
    // No handle means the environment is gone: the call is left to the process's end, as freeing
    // it here could release JS-side state from this thread.
    if (async != nullptr) uv_async_send(async);
  }
};

namespace {

// A worker parks as soon as the queue is empty. Waiting a little for the next call instead (100 us
// of yielding, as this queue first did) starts a caller's next call ~17 us sooner but costs ~20 us
// of CPU per call, which a small host's libvirtd and QEMU need more (bench/README.md).
void WorkerMain(std::shared_ptr<CallQueue::Shared> s) {
  std::unique_lock<std::mutex> lock(s->mutex);
  if (s->freePlaces.empty()) {
    s->places.push_back(std::make_unique<Parked>());
    s->freePlaces.push_back(s->places.back().get());
  }
  Parked* place = s->freePlaces.back();
  s->freePlaces.pop_back();
  while (QueuedCall* call = s->NextLocked(lock, *place)) {
    lock.unlock();
    call->Run();
    // Counted as looking for work before the JS thread hears of the result, so a next call it
    // submits at once is left for this thread, which takes it before it parks. Counted as running
    // until after the wake-up, the JS thread woke another worker whenever it preempted this one
    // between the two: the usual case on a busy 2-CPU machine.
    lock.lock();
    s->running--;
    lock.unlock();
    s->Finish(call);
    lock.lock();
  }
  s->freePlaces.push_back(place);
}

}  // namespace

CallQueue::CallQueue(Napi::Env env)
    : env_(env), shared_(std::make_shared<Shared>()), context_(env, "strata libvirt calls") {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw Napi::Error::New(env, "no event loop for libvirt calls");
  }
  auto* async = new uv_async_t;
  if (uv_async_init(loop, async, OnWake) != 0) {
    delete async;
    throw Napi::Error::New(env, "could not create the wake-up handle for libvirt calls");
  }
  async->data = this;
  // Idle, the queue must not keep the process alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(async));
  shared_->async = async;
}

CallQueue::~CallQueue() { Shutdown(); }

void CallQueue::Shutdown() {
  Shared& s = *shared_;
  uv_async_t* async = s.async;
  if (async == nullptr) return;
  s.Stop();
  uv_close(reinterpret_cast<uv_handle_t*>(async), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  std::vector<std::unique_ptr<QueuedCall>> left;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    for (QueuedCall* c : s.pending) left.emplace_back(c);
    s.pending.clear();
  }
  for (QueuedCall* c = s.finished.exchange(nullptr, std::memory_order_acquire); c != nullptr;) {
    QueuedCall* next = c->next;
    left.emplace_back(c);
    c = next;
  }
  if (left.empty()) return;
  // Not Napi::HandleScope: a cleanup hook must not throw.
  napi_handle_scope scope;
  bool scoped = napi_open_handle_scope(env_, &scope) == napi_ok;
  for (auto& call : left) call->Abandon(env_);
  if (scoped) napi_close_handle_scope(env_, scope);
  std::thread([left = std::move(left)]() mutable { left.clear(); }).detach();
}

void CallQueue::Submit(std::unique_ptr<QueuedCall> call) {
  Shared& s = *shared_;
  Parked* wake = nullptr;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.stopping) return;
    if (outstanding_++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(s.async));
    s.pending.push_back(call.release());
    // Workers neither running a call nor parked (just woken, just started, or on their way back
    // to the queue) take pending calls by themselves; any more need a parked or a new worker.
    const long looking = static_cast<long>(s.threads) - s.running - static_cast<long>(s.parked.size());
    if (static_cast<long>(s.pending.size()) <= looking) return;
    if (!s.parked.empty()) {
      wake = s.parked.back();
      s.parked.pop_back();
      wake->woken = true;
    } else if (s.threads < kMaxThreads) {
      s.threads++;
      std::thread(WorkerMain, shared_).detach();
    }
  }
  if (wake != nullptr) wake->cv.notify_one();
}

void CallQueue::OnWake(uv_async_t* handle) { static_cast<CallQueue*>(handle->data)->SettleFinished(); }

void CallQueue::SettleFinished() {
  QueuedCall* newestFirst = shared_->finished.exchange(nullptr, std::memory_order_acquire);
  if (newestFirst == nullptr) return;
  std::vector<std::unique_ptr<QueuedCall>> batch;
  for (QueuedCall* c = newestFirst; c != nullptr; c = c->next) batch.emplace_back(c);
  Napi::HandleScope handles(env_);
  // Like any callback from libuv into JS: Promise reactions run when the scope closes.
  Napi::CallbackScope scope(env_, context_);
  // In the order they finished.
  for (auto call = batch.rbegin(); call != batch.rend(); ++call) (*call)->Settle(env_);
  outstanding_ -= batch.size();
  if (outstanding_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(shared_->async));
}

}  // namespace strata
