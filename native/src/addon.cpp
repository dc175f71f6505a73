#include "addon.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <string>

#include "connection.h"
#include "constants.h"
#include "domain.h"
#include "errors.h"
#include "event_loop.h"
#include "snapshot.h"

namespace strata {

Addon::Addon(Napi::Env env, Napi::Object exports) {
  if (virInitialize() < 0) throw ToJsError(env, CaptureLastError("virInitialize"));
  SilenceDefaultErrorPrinting();
  // The event loop must exist before the first connection is opened (keepalive and events
  // depend on it), so it starts with the module.
  if (std::string failure = event_loop::Acquire(); !failure.empty()) {
    throw ToJsError(env, UsageFailure(VIR_ERR_INTERNAL_ERROR, failure));
  }

  calls = std::make_unique<CallQueue>(env);
  env_ = env;
  NAPI_THROW_IF_FAILED_VOID(env, napi_add_env_cleanup_hook(env, Shutdown, this));

  Napi::Function connection = Connection::Define(env);
  Napi::Function domain = Domain::Define(env);
  Napi::Function snapshot = Snapshot::Define(env);
  connectionClass = Napi::Persistent(connection);
  domainClass = Napi::Persistent(domain);
  snapshotClass = Napi::Persistent(snapshot);

  Napi::Object constants = Napi::Object::New(env);
  for (const auto& c : IntConstants()) constants.Set(c.name, Napi::Number::New(env, static_cast<double>(c.value)));
  for (const auto& c : StringConstants()) constants.Set(c.name, Napi::String::New(env, c.value));

  Napi::Object enums = Napi::Object::New(env);
  for (const auto& c : IntConstants()) {
    Napi::Value existing = enums.Get(c.type);
    Napi::Object members = existing.IsObject() ? existing.As<Napi::Object>() : Napi::Object::New(env);
    members.Set(c.name, Napi::Number::New(env, static_cast<double>(c.value)));
    enums.Set(c.type, members);
  }

  DefineAddon(exports, {
                           InstanceValue("Connection", connection),
                           InstanceValue("Domain", domain),
                           InstanceValue("DomainSnapshot", snapshot),
                           InstanceValue("constants", constants),
                           InstanceValue("enums", enums),
                           InstanceMethod<&Addon::SetErrorClass>("setErrorClass"),
                       });
  exports.Set("open", Napi::Function::New(env, Connection::Open, "open"));
  exports.Set("openReadOnly", Napi::Function::New(env, Connection::OpenReadOnly, "openReadOnly"));
}

void Addon::Shutdown(void* self) {
  auto* addon = static_cast<Addon*>(self);
  addon->shutDown_ = true;
  addon->calls->Shutdown();
}

Addon::~Addon() {
  if (!shutDown_) napi_remove_env_cleanup_hook(env_, Shutdown, this);
  calls.reset();
  event_loop::Release();
}

Napi::Value Addon::SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass takes a class");
  libvirtErrorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

}  // namespace strata

using StrataAddon = strata::Addon;
NODE_API_ADDON(StrataAddon)
