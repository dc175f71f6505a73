#include "typed_params.h"

#include <type_traits>

namespace strata {

FieldValue CopyTypedParam(const virTypedParameter& p) {
  switch (p.type) {
    case VIR_TYPED_PARAM_INT: return static_cast<long long>(p.value.i);
    case VIR_TYPED_PARAM_UINT: return static_cast<unsigned long long>(p.value.ui);
    case VIR_TYPED_PARAM_LLONG: return p.value.l;
    case VIR_TYPED_PARAM_ULLONG: return p.value.ul;
    case VIR_TYPED_PARAM_DOUBLE: return p.value.d;
    case VIR_TYPED_PARAM_BOOLEAN: return p.value.b != 0;
    case VIR_TYPED_PARAM_STRING: return p.value.s != nullptr ? FieldValue(std::string(p.value.s)) : FieldValue(nullptr);
    default: return nullptr;
  }
}

Fields CopyTypedParams(const virTypedParameter* params, int count) {
  Fields fields;
  fields.reserve(static_cast<size_t>(count > 0 ? count : 0));
  for (int i = 0; i < count; i++) fields.emplace_back(params[i].field, CopyTypedParam(params[i]));
  return fields;
}

Napi::Value FieldToJs(Napi::Env env, const FieldValue& v) {
  return std::visit(
      [env](const auto& x) -> Napi::Value {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, std::nullptr_t>) {
          return env.Null();
        } else if constexpr (std::is_same_v<X, std::string>) {
          return Napi::String::New(env, x);
        } else if constexpr (std::is_same_v<X, bool>) {
          return Napi::Boolean::New(env, x);
        } else {
          return Napi::Number::New(env, static_cast<double>(x));
        }
      },
      v);
}

void SetFields(Napi::Object target, const Fields& fields) {
  for (const auto& [key, value] : fields) target.Set(key, FieldToJs(target.Env(), value));
}

}  // namespace strata
