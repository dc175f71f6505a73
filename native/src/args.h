// Argument checks done on the JS thread before anything reaches libvirt: wrong types throw
// TypeError, out-of-range numbers and unknown flag bits throw RangeError.
#pragma once

#include <napi.h>

#include <optional>
#include <string>

namespace strata::args {

// A required non-empty string, e.g. a disk target such as "vda".
std::string String(const Napi::CallbackInfo& info, size_t index, const char* name);

// A string, or nullptr for undefined/null (libvirt's optional `const char*` arguments).
std::optional<std::string> OptionalString(const Napi::CallbackInfo& info, size_t index, const char* name);

// A non-negative whole number (Number up to 2^53-1, or BigInt up to 2^64-1); undefined is 0.
unsigned long long Unsigned(const Napi::CallbackInfo& info, size_t index, const char* name);

// Flags of the given libvirt enum type; undefined is 0; bits outside the enum are refused.
unsigned int Flags(const Napi::CallbackInfo& info, size_t index, const char* enumType);

// For calls whose flags libvirt reserves for later: undefined or 0, anything else a RangeError.
void NoFlags(const Napi::CallbackInfo& info, size_t index, const char* call);

// An integer in [min, max].
long long Int(const Napi::CallbackInfo& info, size_t index, const char* name, long long min, long long max);

Napi::Function Function(const Napi::CallbackInfo& info, size_t index, const char* name);

inline const char* CStr(const std::optional<std::string>& s) { return s ? s->c_str() : nullptr; }

}  // namespace strata::args
