#include "event_loop.h"

#include <libvirt/libvirt.h>

#include <atomic>
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

void Wake(int timer, void*) { virEventRemoveTimeout(timer); }

void Run() {
  while (running.load()) {
    virEventRunDefaultImpl();
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

}  // namespace strata::event_loop
