#include "event_loop.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <fcntl.h>
#include <sys/epoll.h>
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
  // The descriptor in the epoll set while `events` is not 0: `fd`, or a duplicate of it when
  // another handle already watches `fd` (epoll takes each descriptor once).
  int watched;
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
  int nextHandle = 1;  // handle ids start at 1: 0 in the epoll set is wakeFd
  int nextTimer = 1;
  int epollFd = -1;
  int wakeFd = -1;
  bool polling = false;       // the loop thread is in epoll_wait() or on its way into it
  bool wakeSent = false;      // since it went in
  Clock::time_point pollDue;  // when that wait times out by itself
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

uint32_t ToEpoll(int events) {
  uint32_t e = 0;
  if (events & VIR_EVENT_HANDLE_READABLE) e |= EPOLLIN;
  if (events & VIR_EVENT_HANDLE_WRITABLE) e |= EPOLLOUT;
  return e;
}

int FromEpoll(uint32_t revents) {
  int e = 0;
  if (revents & EPOLLIN) e |= VIR_EVENT_HANDLE_READABLE;
  if (revents & EPOLLOUT) e |= VIR_EVENT_HANDLE_WRITABLE;
  if (revents & EPOLLERR) e |= VIR_EVENT_HANDLE_ERROR;
  if (revents & EPOLLHUP) e |= VIR_EVENT_HANDLE_HANGUP;
  return e;
}

// libvirt's RPC client withdraws its socket from the loop for every call (interest 0: the calling
// thread does the socket's I/O itself) and gives it back after. The epoll set follows at once,
// from the calling thread, and an epoll_wait() under way sees the change without being woken: the
// reply to a call wakes only its caller, and a socket given back wakes the loop only if something
// is already waiting on it. A handle without interest leaves the set (rather than staying with no
// events): epoll reports a hang-up even then, and the loop would spin on it while a call runs.
// With poll(2) both changes cost a wake-up of this thread per call (bench/README.md).
// Returns false if epoll refused the descriptor.
bool Watch(Handle& h, int previousEvents) {
  if (h.events == 0) {
    if (previousEvents != 0) epoll_ctl(loop->epollFd, EPOLL_CTL_DEL, h.watched, nullptr);
    return true;
  }
  epoll_event ev{};
  ev.events = ToEpoll(h.events);
  ev.data.u64 = static_cast<uint64_t>(h.id);
  return epoll_ctl(loop->epollFd, previousEvents == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, h.watched, &ev) == 0;
}

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
  std::lock_guard<std::mutex> lock(loop->mutex);
  int watched = fd;
  for (const Handle& other : loop->handles) {
    if (other.fd == fd && !other.deleted) {
      watched = fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (watched < 0) return -1;
      break;
    }
  }
  Handle h{loop->nextHandle, fd, events, watched, cb, opaque, ff};
  if (!Watch(h, 0)) {
    if (watched != fd) close(watched);
    return -1;
  }
  loop->nextHandle++;
  loop->handles.push_back(h);
  return h.id;
}

void UpdateHandle(int id, int events) {
  std::lock_guard<std::mutex> lock(loop->mutex);
  Handle* h = FindHandle(id);
  if (h == nullptr) return;
  const int previous = h->events;
  h->events = events;
  // Not checked: epoll took this descriptor when it was added, so it takes it again.
  Watch(*h, previous);
}

// Out of the set at once, as libvirt may close the descriptor as soon as this returns. Removals
// wake the loop so their free callbacks run soon: libvirt's frees the connection's client. They
// are rare (a connection closing).
int RemoveHandle(int id) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(loop->mutex);
    Handle* h = FindHandle(id);
    if (h == nullptr) return -1;
    if (h->events != 0) epoll_ctl(loop->epollFd, EPOLL_CTL_DEL, h->watched, nullptr);
    if (h->watched != h->fd) close(h->watched);
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

// One iteration: wait, run due timers, dispatch ready handles, then free what was removed.
// Callbacks run with the mutex released, so they may add, update and remove handles and timers.
void Iterate(std::vector<epoll_event>& ready) {
  std::unique_lock<std::mutex> lock(loop->mutex);
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
  ready.resize(std::max<size_t>(8, loop->handles.size() + 1));
  loop->polling = true;
  loop->wakeSent = false;
  lock.unlock();

  const int count = epoll_wait(loop->epollFd, ready.data(), static_cast<int>(ready.size()), timeoutMs);

  lock.lock();
  loop->polling = false;
  if (count < 0) return;  // EINTR: go round again

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

  for (int k = 0; k < count; k++) {
    const uint64_t key = ready[k].data.u64;
    if (key == 0) {
      uint64_t wakes;
      while (read(loop->wakeFd, &wakes, sizeof wakes) < 0 && errno == EINTR) {
      }
      continue;
    }
    // Looked up again: removed since the wait (maybe by a callback of this pass), or its interest
    // withdrawn, a thread making a call now does this socket's I/O itself.
    Handle* h = FindHandle(static_cast<int>(key));
    if (h == nullptr || h->events == 0) continue;
    const int events = FromEpoll(ready[k].events) & (h->events | VIR_EVENT_HANDLE_ERROR | VIR_EVENT_HANDLE_HANGUP);
    if (events == 0) continue;
    const int id = h->id;
    const int fd = h->fd;
    virEventHandleCallback cb = h->cb;
    void* opaque = h->opaque;
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
  std::vector<epoll_event> ready;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(loop->mutex);
      if (loop->stop) return;
    }
    Iterate(ready);
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
  loop->epollFd = epoll_create1(EPOLL_CLOEXEC);
  if (loop->epollFd < 0) return std::string("epoll for libvirt's event loop: ") + std::strerror(errno);
  loop->wakeFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (loop->wakeFd < 0) return std::string("eventfd for libvirt's event loop: ") + std::strerror(errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  if (epoll_ctl(loop->epollFd, EPOLL_CTL_ADD, loop->wakeFd, &ev) < 0) {
    return std::string("epoll for libvirt's event loop: ") + std::strerror(errno);
  }
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
