// libvirt's default event loop, run on a thread of its own. libvirt allows one event
// implementation per process, registered before the first connection and never replaced, so this
// is process-wide state shared by every environment that loads the addon.
#pragma once

namespace strata::event_loop {

// Registers the default implementation (once per process) and starts its thread.
// Returns false with libvirt's error left set when registration fails.
bool Acquire();

// Drops one environment's hold; the last one stops and joins the thread.
void Release();

// Marks a blocking libvirt call as running on this thread for the object's lifetime; see
// event_loop.cpp for what the loop does differently meanwhile.
class CallInFlight {
 public:
  CallInFlight();
  ~CallInFlight();
  CallInFlight(const CallInFlight&) = delete;
  CallInFlight& operator=(const CallInFlight&) = delete;
};

}  // namespace strata::event_loop
