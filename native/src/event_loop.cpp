#include "event_loop.h"

#include <libvirt/libvirt.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace strata::event_loop {

namespace {

std::mutex mutex;
int holders = 0;
bool registered = false;
std::atomic<bool> running{false};
// Heap-allocated so no static destructor runs at exit(): process.exit() skips the environment's
// cleanup, and destroying a joinable std::thread would abort the process.
std::thread* loopThread = nullptr;

std::atomic<int> callsInFlight{0};

// libvirt's RPC client takes its socket out of the loop's poll set for every call and puts it back
// afterwards, and with the default (GLib) implementation each change wakes the loop thread when
// it is waiting in poll(): two wake-ups of another thread per call, whose CPU time a small host's
// libvirtd and QEMU need (measured: 30-40 us a call, 5 % of a blockJobInfo round trip). The
// calling thread does the socket's I/O itself meanwhile. So while calls run, the loop thread
// naps between iterations instead of waiting in poll() at once: changes made while it naps
// wake nobody, and the next iteration picks them up. Events, keepalive and other connections'
// traffic then wait at most one nap longer; with no call running the loop waits in poll() as
// before.
constexpr auto kNapWhileCallsRun = std::chrono::milliseconds(2);

void Wake(int timer, void*) { virEventRemoveTimeout(timer); }

void Run() {
  while (running.load()) {
    virEventRunDefaultImpl();
    if (callsInFlight.load(std::memory_order_relaxed) > 0) std::this_thread::sleep_for(kNapWhileCallsRun);
  }
}

}  // namespace

bool Acquire() {
  std::lock_guard<std::mutex> lock(mutex);
  if (!registered) {
    if (virEventRegisterDefaultImpl() < 0) return false;
    registered = true;
  }
  if (holders++ == 0) {
    running = true;
    loopThread = new std::thread(Run);
  }
  return true;
}

void Release() {
  std::lock_guard<std::mutex> lock(mutex);
  if (holders == 0 || --holders > 0) return;
  running = false;
  // A zero timeout makes the blocked poll() return, so the loop sees `running` is false.
  virEventAddTimeout(0, Wake, nullptr, nullptr);
  if (loopThread != nullptr) {
    loopThread->join();
    delete loopThread;
    loopThread = nullptr;
  }
}

CallInFlight::CallInFlight() { callsInFlight.fetch_add(1, std::memory_order_relaxed); }

CallInFlight::~CallInFlight() { callsInFlight.fetch_sub(1, std::memory_order_relaxed); }

}  // namespace strata::event_loop
