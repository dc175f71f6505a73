#include "event_loop.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace strata::event_loop {

namespace {

using Clock = std::chrono::steady_clock;

struct Handle {
  int id;
  int fd;
  int events;  // what libvirt wants now (VIR_EVENT_HANDLE_*)
  // What the poll() under way waits for, if it is under way: see NeedsWake().
  int polled = 0;
  virEventHandleCallback cb;
  void* opaque;
  virFreeCallback ff;
  bool deleted = false;
};

struct Timer {
  int id;
  int interval;  // ms; -1 disabled, 0 fires on every iteration
  Clock::time_point due;
  virEventTimeoutCallback cb;
  void* opaque;
  virFreeCallback ff;
  bool deleted = false;
};

// Elements are erased only by the loop thread, after a dispatch pass, so during a pass an index
// stays valid even while a callback (the mutex released) adds entries.
struct Loop {
  std::mutex mutex;
  std::vector<Handle> handles;
  std::vector<Timer> timers;
  int nextHandle = 1;
  int nextTimer = 1;
  int wakeFd = -1;
  bool polling = false;       // the loop thread is in poll() or on its way into it
  bool wakeSent = false;      // since it went in
  Clock::time_point pollDue;  // when that poll() times out by itself
  bool stop = false;
};

// Allocated once and never freed: a process may exit with the thread still running
// (process.exit() skips environment cleanup), so no static destructor may run under it.
Loop* loop = nullptr;

std::mutex lifeMutex;  // guards what follows
int holders = 0;
bool registered = false;
bool useDefaultImpl = false;
std::thread* loopThread = nullptr;

// Call with loop->mutex held; the caller writes to wakeFd after unlocking when this says so.
bool TakeWake() {
  if (!loop->polling || loop->wakeSent) return false;
  loop->wakeSent = true;
  return true;
}

void Wake() {
  const uint64_t one = 1;
  while (write(loop->wakeFd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

// libvirt's RPC client withdraws its socket from the loop for every call (interest 0: the calling
// thread does the socket's I/O itself) and gives it back after. A withdrawal needs no wake-up: the
// poll() under way may then report the socket when the reply arrives, and the loop, finding no
// interest left, just polls again without it. Only interest the poll() under way lacks needs one,
// even while calls run back to back: not waking for it then (a bounded wait instead, or the nap
// the GLib loop took) saves ~10 us of CPU per call but delays events (bench/README.md).
bool NeedsWake(const Handle& h) { return (h.events & ~h.polled) != 0 && TakeWake(); }

Handle* FindHandle(int id) {
  for (auto& h : loop->handles) {
    if (h.id == id && !h.deleted) return &h;
  }
  return nullptr;
}

Timer* FindTimer(int id) {
  for (auto& t : loop->timers) {
    if (t.id == id && !t.deleted) return &t;
  }
  return nullptr;
}

int AddHandle(int fd, int events, virEventHandleCallback cb, void* opaque, virFreeCallback ff) {
  bool wake;
  int id;
  {
    std::lock_guard<std::mutex> lock(loop->mutex);
    id = loop->nextHandle++;
    loop->handles.push_back({id, fd, events, 0, cb, opaque, ff});
    wake = NeedsWake(loop->handles.back());
  }
  if (wake) Wake();
  return id;
}

void UpdateHandle(int id, int events) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(loop->mutex);
    if (Handle* h = FindHandle(id)) {
      h->events = events;
      wake = NeedsWake(*h);
    }
  }
  if (wake) Wake();
}

// Removals wake the loop so their free callbacks run soon: libvirt's frees the connection's
// client. They are rare (a connection closing).
int RemoveHandle(int id) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(loop->mutex);
    Handle* h = FindHandle(id);
    if (h == nullptr) return -1;
    h->deleted = true;
    wake = TakeWake();
  }
  if (wake) Wake();
  return 0;
}

bool TimerNeedsWake(const Timer& t) { return t.interval >= 0 && t.due < loop->pollDue && TakeWake(); }

int AddTimeout(int interval, virEventTimeoutCallback cb, void* opaque, virFreeCallback ff) {
  bool wake;
  int id;
  {
    std::lock_guard<std::mutex> lock(loop->mutex);
    id = loop->nextTimer++;
    loop->timers.push_back({id, interval, Clock::now() + std::chrono::milliseconds(interval), cb, opaque, ff});
    wake = TimerNeedsWake(loop->timers.back());
  }
  if (wake) Wake();
  return id;
}

// An event libvirt has queued for its callbacks arms a 0 ms timer from whichever thread received
// it (often a thread making a call): the wake-up here is what takes it to JS at once.
void UpdateTimeout(int id, int interval) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(loop->mutex);
    if (Timer* t = FindTimer(id)) {
      t->interval = interval;
      if (interval >= 0) t->due = Clock::now() + std::chrono::milliseconds(interval);
      wake = TimerNeedsWake(*t);
    }
  }
  if (wake) Wake();
}

int RemoveTimeout(int id) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(loop->mutex);
    Timer* t = FindTimer(id);
    if (t == nullptr) return -1;
    t->deleted = true;
    wake = TakeWake();
  }
  if (wake) Wake();
  return 0;
}

short ToPoll(int events) {
  short p = 0;
  if (events & VIR_EVENT_HANDLE_READABLE) p |= POLLIN;
  if (events & VIR_EVENT_HANDLE_WRITABLE) p |= POLLOUT;
  return p;
}

int FromPoll(short revents) {
  int e = 0;
  if (revents & POLLIN) e |= VIR_EVENT_HANDLE_READABLE;
  if (revents & POLLOUT) e |= VIR_EVENT_HANDLE_WRITABLE;
  // An fd closed while still registered: its owner hears of it as an error and removes it.
  if (revents & (POLLERR | POLLNVAL)) e |= VIR_EVENT_HANDLE_ERROR;
  if (revents & POLLHUP) e |= VIR_EVENT_HANDLE_HANGUP;
  return e;
}

// One iteration: wait, run due timers, dispatch ready handles, then free what was removed.
// Callbacks run with the mutex released, so they may add, update and remove handles and timers.
void Iterate(std::vector<pollfd>& fds, std::vector<size_t>& slots) {
  std::unique_lock<std::mutex> lock(loop->mutex);
  fds.assign(1, pollfd{loop->wakeFd, POLLIN, 0});
  slots.clear();
  for (size_t i = 0; i < loop->handles.size(); i++) {
    Handle& h = loop->handles[i];
    h.polled = h.deleted ? 0 : h.events;
    if (h.polled == 0) continue;
    fds.push_back(pollfd{h.fd, ToPoll(h.events), 0});
    slots.push_back(i);
  }
  const Clock::time_point now = Clock::now();
  loop->pollDue = Clock::time_point::max();
  for (const Timer& t : loop->timers) {
    if (!t.deleted && t.interval >= 0 && t.due < loop->pollDue) loop->pollDue = t.due;
  }
  int timeoutMs = -1;
  if (loop->pollDue != Clock::time_point::max()) {
    // Rounded up, so the wait never ends just before a timer is due.
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(loop->pollDue - now).count();
    timeoutMs = static_cast<int>(std::max<decltype(wait)>(0, std::min<decltype(wait)>(wait, 24 * 3600 * 1000)));
  }
  loop->polling = true;
  loop->wakeSent = false;
  lock.unlock();

  int ready = poll(fds.data(), fds.size(), timeoutMs);

  lock.lock();
  loop->polling = false;
  if (ready < 0) return;  // EINTR: go round again
  if (fds[0].revents & POLLIN) {
    uint64_t count;
    while (read(loop->wakeFd, &count, sizeof count) < 0 && errno == EINTR) {
    }
  }

  const Clock::time_point fired = Clock::now();
  const size_t timerCount = loop->timers.size();
  for (size_t i = 0; i < timerCount; i++) {
    Timer& t = loop->timers[i];
    if (t.deleted || t.interval < 0 || t.due > fired) continue;
    t.due = fired + std::chrono::milliseconds(t.interval);
    const int id = t.id;
    virEventTimeoutCallback cb = t.cb;
    void* opaque = t.opaque;
    lock.unlock();
    cb(id, opaque);
    lock.lock();
  }

  for (size_t k = 0; k < slots.size(); k++) {
    const short revents = fds[k + 1].revents;
    if (revents == 0) continue;
    Handle& h = loop->handles[slots[k]];
    // Removed since the poll() (maybe by a callback of this pass), or its interest withdrawn: a
    // thread making a call now does this socket's I/O itself.
    if (h.deleted || h.events == 0) continue;
    const int events = FromPoll(revents) & (h.events | VIR_EVENT_HANDLE_ERROR | VIR_EVENT_HANDLE_HANGUP);
    if (events == 0) continue;
    const int id = h.id;
    const int fd = h.fd;
    virEventHandleCallback cb = h.cb;
    void* opaque = h.opaque;
    lock.unlock();
    cb(id, fd, events, opaque);
    lock.lock();
  }

  // Free callbacks run here, outside any callback and with the mutex released: libvirt's may
  // drop the last reference to an object whose disposal takes locks a callback could hold.
  std::vector<std::pair<virFreeCallback, void*>> frees;
  std::erase_if(loop->handles, [&](const Handle& h) {
    if (h.deleted && h.ff != nullptr) frees.emplace_back(h.ff, h.opaque);
    return h.deleted;
  });
  std::erase_if(loop->timers, [&](const Timer& t) {
    if (t.deleted && t.ff != nullptr) frees.emplace_back(t.ff, t.opaque);
    return t.deleted;
  });
  lock.unlock();
  for (auto& [ff, opaque] : frees) ff(opaque);
}

void Run() {
  std::vector<pollfd> fds;
  std::vector<size_t> slots;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(loop->mutex);
      if (loop->stop) return;
    }
    Iterate(fds, slots);
  }
}

void StopTimer(int timer, void*) { virEventRemoveTimeout(timer); }

void RunDefaultImpl() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(loop->mutex);
      if (loop->stop) return;
    }
    virEventRunDefaultImpl();
  }
}

std::string Register() {
  // A debugging switch, and the control of test/native/12-glib-context.test.ts: libvirt's own
  // GLib-based implementation, to show what this file exists to avoid.
  const char* impl = std::getenv("STRATA_EVENT_IMPL");
  useDefaultImpl = impl != nullptr && std::strcmp(impl, "default") == 0;
  loop = new Loop;
  if (useDefaultImpl) {
    if (virEventRegisterDefaultImpl() == 0) return "";
    virErrorPtr err = virGetLastError();
    return err != nullptr && err->message != nullptr ? err->message : "virEventRegisterDefaultImpl failed";
  }
  loop->wakeFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (loop->wakeFd < 0) return std::string("eventfd for libvirt's event loop: ") + std::strerror(errno);
  virEventRegisterImpl(AddHandle, UpdateHandle, RemoveHandle, AddTimeout, UpdateTimeout, RemoveTimeout);
  return "";
}

}  // namespace

std::string Acquire() {
  std::lock_guard<std::mutex> lock(lifeMutex);
  if (!registered) {
    if (std::string failure = Register(); !failure.empty()) return failure;
    registered = true;
  }
  if (holders++ == 0) {
    {
      std::lock_guard<std::mutex> loopLock(loop->mutex);
      loop->stop = false;
    }
    loopThread = new std::thread(useDefaultImpl ? RunDefaultImpl : Run);
  }
  return "";
}

void Release() {
  std::lock_guard<std::mutex> lock(lifeMutex);
  if (holders == 0 || --holders > 0) return;
  bool wake;
  {
    std::lock_guard<std::mutex> loopLock(loop->mutex);
    loop->stop = true;
    wake = !useDefaultImpl;
  }
  // A zero timeout makes the default implementation's poll() return too.
  if (wake) Wake();
  else virEventAddTimeout(0, StopTimer, nullptr, nullptr);
  loopThread->join();
  delete loopThread;
  loopThread = nullptr;
}

}  // namespace strata::event_loop
