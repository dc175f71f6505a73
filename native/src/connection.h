// virConnectPtr as a JS class: open/close, host facts and capabilities, domain lookup and
// definition, events.
#pragma once

#include <napi.h>

#include <memory>

#include "state.h"

namespace strata {

class Connection : public Napi::ObjectWrap<Connection> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Value Open(const Napi::CallbackInfo& info);
  static Napi::Value OpenReadOnly(const Napi::CallbackInfo& info);
  explicit Connection(const Napi::CallbackInfo& info);
  static std::shared_ptr<ConnState> StateOf(const Napi::Value& value);

 private:
  static Napi::Value OpenWith(const Napi::CallbackInfo& info, bool readOnly);
  // False once closed: every call then returns RejectConnectionClosed's promise.
  bool Usable() const { return state_ && !state_->closed; }
  Napi::Promise RejectConnectionClosed(Napi::Env env) const;

  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsAlive(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);
  Napi::Value GetURI(const Napi::CallbackInfo& info);
  Napi::Value GetHostname(const Napi::CallbackInfo& info);
  Napi::Value GetLibVersion(const Napi::CallbackInfo& info);
  Napi::Value GetVersion(const Napi::CallbackInfo& info);
  Napi::Value GetType(const Napi::CallbackInfo& info);
  Napi::Value GetCapabilities(const Napi::CallbackInfo& info);
  Napi::Value GetDomainCapabilities(const Napi::CallbackInfo& info);
  Napi::Value SetKeepAlive(const Napi::CallbackInfo& info);
  Napi::Value RegisterCloseCallback(const Napi::CallbackInfo& info);
  Napi::Value UnregisterCloseCallback(const Napi::CallbackInfo& info);
  Napi::Value ListAllDomains(const Napi::CallbackInfo& info);
  Napi::Value GetAllDomainStats(const Napi::CallbackInfo& info);
  Napi::Value LookupByName(const Napi::CallbackInfo& info);
  Napi::Value LookupByUUIDString(const Napi::CallbackInfo& info);
  Napi::Value CreateXML(const Napi::CallbackInfo& info);
  Napi::Value DefineXML(const Napi::CallbackInfo& info);
  Napi::Value DomainEventRegisterAny(const Napi::CallbackInfo& info);
  Napi::Value DomainEventDeregisterAny(const Napi::CallbackInfo& info);

  std::shared_ptr<ConnState> state_;
};

}  // namespace strata
