#include "close_callback.h"

#include <libvirt/virterror.h>

#include <utility>

#include "errors.h"
#include "worker.h"

namespace strata {

namespace {

void OnClose(virConnectPtr, int reason, void* opaque) {
  static_cast<CloseCallback*>(opaque)->tsfn.NonBlockingCall([reason](Napi::Env env, Napi::Function callback) {
    Napi::Object event = Napi::Object::New(env);
    event.Set("reason", reason);
    callback.Call({event});
  });
}

// A callback libvirt may still hold (its unregistration failed) must never be freed.
void KeepForever(const std::shared_ptr<CloseCallback>& callback) { new std::shared_ptr<CloseCallback>(callback); }

bool Unregister(virConnectPtr conn, const std::shared_ptr<CloseCallback>& callback) {
  if (virConnectUnregisterCloseCallback(conn, OnClose) < 0) {
    KeepForever(callback);
    return false;
  }
  callback->tsfn.Release();
  return true;
}

}  // namespace

Napi::Promise RegisterCloseCallback(Napi::Env env, const std::shared_ptr<ConnState>& conn, Napi::Function callback) {
  if (conn->closeCallback) {
    return Rejected(env, UsageFailure(VIR_ERR_OPERATION_INVALID, "a close callback is already registered: unregister it first"));
  }
  auto data = std::make_shared<CloseCallback>();
  data->tsfn = Napi::ThreadSafeFunction::New(env, callback, "strata-libvirt-close", 0, 1);
  // A close callback, like the connection itself, is no reason for the process to keep running.
  data->tsfn.Unref(env);
  // Set at once, so a second registration is refused while this one is in flight.
  conn->closeCallback = data;
  std::weak_ptr<ConnState> weak = conn;
  Napi::Promise registered = RunAsync(
      env, "virConnectRegisterCloseCallback",
      [ref = conn->ref.Share(), turn = Turn(conn->ops), data]() mutable {
        turn.Wait();
        int rc = virConnectRegisterCloseCallback(ref.get(), OnClose, data.get(), nullptr);
        LibvirtFailure failure;
        if (rc < 0) failure = CaptureLastError("virConnectRegisterCloseCallback");
        turn.Done();
        if (rc < 0) {
          data->tsfn.Release();
          throw failure;
        }
        return 0;
      },
      [](Napi::Env e, int&) { return e.Undefined(); });
  auto forget = Napi::Function::New(env, [weak, data](const Napi::CallbackInfo& info) -> Napi::Value {
    // libvirt refused it: forget it, so a later registration is not refused for nothing.
    if (auto state = weak.lock(); state && state->closeCallback == data) state->closeCallback.reset();
    throw Napi::Error(info.Env(), info[0]);
  });
  return registered.Get("catch").As<Napi::Function>().Call(registered, {forget}).As<Napi::Promise>();
}

Napi::Promise UnregisterCloseCallback(Napi::Env env, const std::shared_ptr<ConnState>& conn) {
  std::shared_ptr<CloseCallback> data = std::exchange(conn->closeCallback, nullptr);
  if (!data) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(Napi::Boolean::New(env, false));
    return d.Promise();
  }
  return RunAsync(
      env, "virConnectUnregisterCloseCallback",
      [ref = conn->ref.Share(), turn = Turn(conn->ops), data]() mutable {
        turn.Wait();
        bool ok = Unregister(ref.get(), data);
        LibvirtFailure failure;
        if (!ok) failure = CaptureLastError("virConnectUnregisterCloseCallback");
        turn.Done();
        if (!ok) throw failure;
        return true;
      },
      [](Napi::Env e, bool& v) { return Napi::Boolean::New(e, v); });
}

void DropCloseCallback(virConnectPtr conn, const std::shared_ptr<CloseCallback>& callback) {
  if (callback) Unregister(conn, callback);
  virResetLastError();
}

}  // namespace strata
