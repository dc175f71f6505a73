// virDomainSnapshotPtr as a JS class: the basics the lab and chain operations need. The Domain's
// snapshot methods (create, list, look up) are defined in snapshot.cpp too.
#pragma once

#include <napi.h>

#include <memory>

#include "state.h"

namespace strata {

class Snapshot : public Napi::ObjectWrap<Snapshot> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, SnapshotRef ref, const std::shared_ptr<DomState>& dom);
  explicit Snapshot(const Napi::CallbackInfo& info);

 private:
  bool Usable() const { return state_->ref && !state_->dom->conn->closed; }
  Napi::Value GetName(const Napi::CallbackInfo& info);
  Napi::Value GetXMLDesc(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);

  std::shared_ptr<SnapshotState> state_;
};

}  // namespace strata
