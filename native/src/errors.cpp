#include "errors.h"

#include <libvirt/virterror.h>

#include "addon.h"
#include "constants.h"

namespace strata {

namespace {
void IgnoreError(void*, virErrorPtr) {}
}  // namespace

LibvirtFailure CaptureLastError(const char* call) {
  LibvirtFailure f;
  virErrorPtr err = virGetLastError();
  if (err == nullptr) {
    f.code = VIR_ERR_INTERNAL_ERROR;
    f.message = std::string(call) + " failed without an error from libvirt";
    return f;
  }
  f.code = err->code;
  f.domain = err->domain;
  f.level = err->level;
  f.message = err->message != nullptr ? err->message : std::string(call) + " failed";
  if (err->str1 != nullptr) f.str1 = err->str1;
  if (err->str2 != nullptr) f.str2 = err->str2;
  if (err->str3 != nullptr) f.str3 = err->str3;
  f.int1 = err->int1;
  f.int2 = err->int2;
  virResetLastError();
  return f;
}

void ThrowLastError(const char* call) { throw CaptureLastError(call); }

LibvirtFailure UsageFailure(int code, const std::string& message) {
  LibvirtFailure f;
  f.code = code;
  f.domain = VIR_FROM_NONE;
  f.message = message;
  return f;
}

void SilenceDefaultErrorPrinting() { virSetErrorFunc(nullptr, IgnoreError); }

Napi::Error ToJsError(Napi::Env env, const LibvirtFailure& f) {
  std::string codeName = NameOf("virErrorNumber", f.code);
  std::string domainName = NameOf("virErrorDomain", f.domain);
  std::string levelName = NameOf("virErrorLevel", f.level);
  Napi::Object details = Napi::Object::New(env);
  details.Set("code", codeName.empty() ? "VIR_ERR_UNKNOWN" : codeName);
  details.Set("domain", domainName.empty() ? "VIR_FROM_UNKNOWN" : domainName);
  details.Set("level", levelName.empty() ? "VIR_ERR_ERROR" : levelName);
  details.Set("codeNumber", f.code);
  details.Set("domainNumber", f.domain);
  details.Set("levelNumber", f.level);
  details.Set("str1", f.str1.empty() ? env.Null() : Napi::String::New(env, f.str1));
  details.Set("str2", f.str2.empty() ? env.Null() : Napi::String::New(env, f.str2));
  details.Set("str3", f.str3.empty() ? env.Null() : Napi::String::New(env, f.str3));
  details.Set("int1", f.int1);
  details.Set("int2", f.int2);

  Addon& addon = Addon::Of(env);
  if (!addon.libvirtErrorClass.IsEmpty()) {
    Napi::Object e = addon.libvirtErrorClass.New({Napi::String::New(env, f.message), details});
    return Napi::Error(env, e);
  }
  Napi::Error e = Napi::Error::New(env, f.message);
  for (const char* key : {"code", "domain", "level", "codeNumber", "domainNumber", "levelNumber"}) {
    e.Set(key, details.Get(key));
  }
  return e;
}

}  // namespace strata
