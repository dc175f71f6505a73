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

}  // namespace strata::event_loop
