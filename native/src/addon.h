// Per-environment state of the addon (constructors, the JS error class), so nothing JS-facing
// lives in a static and the addon loads in several environments (Electron windows, workers).
#pragma once

#include <napi.h>

#include <memory>

#include "call_queue.h"

namespace strata {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports);
  ~Addon();
  static Addon& Of(Napi::Env env) { return *env.GetInstanceData<Addon>(); }

  Napi::FunctionReference connectionClass;
  Napi::FunctionReference domainClass;
  Napi::FunctionReference snapshotClass;
  Napi::FunctionReference libvirtErrorClass;
  std::unique_ptr<CallQueue> calls;

 private:
  // The environment's cleanup hook: runs before the instance data is freed, while N-API can still
  // settle Promises; removed if the addon goes first.
  static void Shutdown(void* self);
  napi_env env_;
  bool shutDown_ = false;

  Napi::Value SetErrorClass(const Napi::CallbackInfo& info);
};

}  // namespace strata
