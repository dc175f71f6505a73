// Runs one blocking libvirt call on the addon's call queue and settles a Promise with its result.
// `work` runs off the JS thread and must not touch Napi values; `convert` runs on the JS thread.
#pragma once

#include <napi.h>

#include <memory>
#include <optional>
#include <type_traits>
#include <string>
#include <utility>

#include "addon.h"
#include "call_queue.h"
#include "errors.h"
#include "op_sequence.h"

namespace strata {

// Work and Convert are the lambdas' own types (not std::function), so they may capture
// move-only RAII references.
template <typename T, typename Work, typename Convert>
class Call final : public QueuedCall {
 public:
  Call(napi_deferred deferred, const char* name, std::optional<Turn> turn, Work work, Convert convert)
      : deferred_(deferred),
        name_(name),
        turn_(std::move(turn)),
        work_(std::in_place, std::move(work)),
        convert_(std::in_place, std::move(convert)) {}

  void Run() override {
    if (turn_) turn_->Wait();
    try {
      value_.emplace((*work_)());
    } catch (const LibvirtFailure& f) {
      failure_ = f;
    } catch (const std::exception& e) {
      failure_ = UsageFailure(1, std::string(name_) + ": " + e.what());
    }
    // The libvirt references the work holds go here, off the JS thread and still in turn:
    // dropping the last one of a connection closes it, which talks to the daemon.
    work_.reset();
    if (turn_) turn_->Done();
  }

  void Settle(Napi::Env env) override {
    Napi::HandleScope scope(env);
    napi_value outcome;
    bool resolved = false;
    try {
      if (value_) {
        outcome = (*convert_)(env, *value_);
        resolved = true;
      } else {
        outcome = ToJsError(env, failure_).Value();
      }
    } catch (const Napi::Error& e) {
      outcome = e.Value();
    }
    if (resolved) napi_resolve_deferred(env, deferred_, outcome);
    else napi_reject_deferred(env, deferred_, outcome);
  }

  // Rejecting frees the Promise's handle. A worker being terminated can no longer run JS, and then
  // N-API refuses, and the handle (8 bytes) stays allocated: N-API has no other way to free it.
  void Abandon(Napi::Env env) override {
    napi_value message;
    napi_value error;
    if (napi_create_string_utf8(env, "the environment is shutting down", NAPI_AUTO_LENGTH, &message) == napi_ok &&
        napi_create_error(env, nullptr, message, &error) == napi_ok) {
      napi_reject_deferred(env, deferred_, error);
    }
    convert_.reset();
  }

 private:
  napi_deferred deferred_;
  const char* name_;
  // The connection's, for a call on one; given up with the call if it never runs.
  std::optional<Turn> turn_;
  std::optional<Work> work_;
  // What it captures belongs to the JS thread.
  std::optional<Convert> convert_;
  std::optional<T> value_;
  LibvirtFailure failure_;
};

namespace detail {
template <typename Work, typename Convert>
Napi::Promise Submit(Napi::Env env, std::optional<Turn> turn, const char* name, Work work, Convert convert) {
  using T = std::invoke_result_t<Work&>;
  napi_deferred deferred;
  napi_value promise;
  NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &deferred, &promise), Napi::Promise());
  Addon::Of(env).calls->Submit(
      std::make_unique<Call<T, Work, Convert>>(deferred, name, std::move(turn), std::move(work), std::move(convert)));
  return Napi::Promise(env, promise);
}
}  // namespace detail

// Starts `work` (returning T) on the addon's call queue; `convert(env, T&)` makes the resolved
// value on the JS thread. For calls on no connection (open), and for those that take their
// connection's turn themselves.
template <typename Work, typename Convert>
Napi::Promise RunAsync(Napi::Env env, const char* name, Work work, Convert convert) {
  return detail::Submit(env, std::nullopt, name, std::move(work), std::move(convert));
}

// The same, for a call on a connection: on one over a network link, `work` runs in the
// connection's turn (op_sequence.h says why those calls never overlap).
template <typename Work, typename Convert>
Napi::Promise RunAsync(Napi::Env env, const std::shared_ptr<OpSequence>& ops, const char* name, Work work,
                       Convert convert) {
  std::optional<Turn> turn;
  // The ticket is taken here, right before the call is submitted: the queue starts calls in that
  // same order.
  if (ops->serialCalls) turn.emplace(ops);
  return detail::Submit(env, std::move(turn), name, std::move(work), std::move(convert));
}

// A Promise already rejected with a LibvirtError, for calls refused before reaching libvirt
// (a closed connection, a freed domain).
inline Napi::Promise Rejected(Napi::Env env, const LibvirtFailure& failure) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(ToJsError(env, failure).Value());
  return deferred.Promise();
}

}  // namespace strata
