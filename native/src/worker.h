// Runs one blocking libvirt call on the libuv thread pool and settles a Promise with its result.
// `work` runs off the JS thread and must not touch Napi values; `convert` runs on the JS thread.
#pragma once

#include <napi.h>

#include <optional>
#include <type_traits>
#include <string>
#include <utility>

#include "errors.h"

namespace strata {

// Work and Convert are the lambdas' own types (not std::function), so they may capture
// move-only RAII references.
template <typename T, typename Work, typename Convert>
class Call final : public Napi::AsyncWorker {
 public:
  Call(Napi::Env env, const char* name, Work work, Convert convert)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        convert_(std::move(convert)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      value_.emplace(work_());
    } catch (const LibvirtFailure& f) {
      failure_ = f;
      SetError(f.message);
    } catch (const std::exception& e) {
      failure_ = UsageFailure(1, e.what());
      SetError(e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(convert_(env, *value_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

  void OnError(const Napi::Error&) override { deferred_.Reject(ToJsError(Env(), failure_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Convert convert_;
  std::optional<T> value_;
  LibvirtFailure failure_;
};

// Starts `work` (returning T) on the thread pool; `convert(env, T&)` makes the resolved value.
template <typename Work, typename Convert>
Napi::Promise RunAsync(Napi::Env env, const char* name, Work work, Convert convert) {
  using T = std::invoke_result_t<Work&>;
  auto* call = new Call<T, Work, Convert>(env, name, std::move(work), std::move(convert));
  Napi::Promise promise = call->Promise();
  call->Queue();
  return promise;
}

// A Promise already rejected with a LibvirtError, for calls refused before reaching libvirt
// (a closed connection, a freed domain).
inline Napi::Promise Rejected(Napi::Env env, const LibvirtFailure& failure) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(ToJsError(env, failure).Value());
  return deferred.Promise();
}

}  // namespace strata
