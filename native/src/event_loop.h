// libvirt's event loop: the addon's own implementation of libvirt's event interface, run on a
// thread of its own with its own epoll(7) set. libvirt allows one event implementation per
// process, registered before the first connection and never replaced, so this is process-wide
// state shared by every environment that loads the addon.
//
// Not libvirt's default implementation: that one runs on GLib's default main context, which
// Electron's UI thread iterates too, so libvirt callbacks could run on the UI thread, this thread
// could starve waiting for the context, and joining it at exit could hang.
#pragma once

#include <string>

namespace strata::event_loop {

// Registers the implementation (once per process) and starts its thread. Returns why that failed,
// or "".
std::string Acquire();

// Drops one environment's hold; the last one stops and joins the thread.
void Release();

}  // namespace strata::event_loop
