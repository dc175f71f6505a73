// libvirt typed parameters copied into plain C++ values (safe to carry across threads) and
// turned into JS values on the JS thread.
#pragma once

#include <libvirt/libvirt.h>
#include <napi.h>

#include <cstddef>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace strata {

using FieldValue = std::variant<std::nullptr_t, long long, unsigned long long, double, bool, std::string>;
using Fields = std::vector<std::pair<std::string, FieldValue>>;

FieldValue CopyTypedParam(const virTypedParameter& param);
Fields CopyTypedParams(const virTypedParameter* params, int count);
Napi::Value FieldToJs(Napi::Env env, const FieldValue& value);
void SetFields(Napi::Object target, const Fields& fields);

}  // namespace strata
