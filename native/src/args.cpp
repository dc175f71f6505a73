#include "args.h"

#include <cmath>
#include <cstdio>

#include "constants.h"

namespace strata::args {

namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;

[[noreturn]] void Type(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }
[[noreturn]] void Range(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

bool Absent(const Napi::Value& v) { return v.IsUndefined(); }

}  // namespace

std::string String(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsString()) Type(info.Env(), std::string(name) + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.empty()) Type(info.Env(), std::string(name) + " must not be empty");
  if (s.find('\0') != std::string::npos) Type(info.Env(), std::string(name) + " must not contain NUL characters");
  return s;
}

std::optional<std::string> OptionalString(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  return String(info, index, name);
}

unsigned long long Unsigned(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  Napi::Env env = info.Env();
  if (Absent(v)) return 0;
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t value = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) Range(env, std::string(name) + " must be a bigint from 0 to 2^64-1");
    return value;
  }
  if (!v.IsNumber()) Type(env, std::string(name) + " must be a number or a bigint");
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::isnan(d) || std::isinf(d) || d != std::floor(d)) Range(env, std::string(name) + " must be a whole number");
  if (d < 0) Range(env, std::string(name) + " must not be negative");
  if (d > kMaxSafeInteger) Range(env, std::string(name) + " is above Number.MAX_SAFE_INTEGER: pass a bigint");
  return static_cast<unsigned long long>(d);
}

unsigned int Flags(const Napi::CallbackInfo& info, size_t index, const char* enumType) {
  Napi::Value v = info[index];
  Napi::Env env = info.Env();
  if (Absent(v)) return 0;
  if (!v.IsNumber()) Type(env, std::string("flags must be a number made of ") + enumType + " values");
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::isnan(d) || d != std::floor(d) || d < 0 || d > 4294967295.0) {
    Range(env, std::string("flags must be a whole number from 0 to 2^32-1 made of ") + enumType + " values");
  }
  auto flags = static_cast<unsigned int>(d);
  unsigned int unknown = flags & ~FlagMask(enumType);
  if (unknown != 0) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", unknown);
    Range(env, std::string("flags has bits ") + hex + " that are not " + enumType + " values");
  }
  return flags;
}

void NoFlags(const Napi::CallbackInfo& info, size_t index, const char* call) {
  Napi::Value v = info[index];
  if (Absent(v) || (v.IsNumber() && v.As<Napi::Number>().DoubleValue() == 0)) return;
  Range(info.Env(), std::string(call) + " takes no flags: pass 0 or nothing");
}

long long Int(const Napi::CallbackInfo& info, size_t index, const char* name, long long min, long long max) {
  Napi::Value v = info[index];
  Napi::Env env = info.Env();
  if (!v.IsNumber()) Type(env, std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::isnan(d) || d != std::floor(d)) Range(env, std::string(name) + " must be a whole number");
  if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
    Range(env, std::string(name) + " must be from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<long long>(d);
}

Napi::Function Function(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsFunction()) Type(info.Env(), std::string(name) + " must be a function");
  return v.As<Napi::Function>();
}

}  // namespace strata::args
