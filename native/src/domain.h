// virDomainPtr as a JS class. Block-job methods live in domain_blockjob.cpp, snapshot methods in
// snapshot.cpp, suspend/resume, backup, job and checkpoint methods in domain_job.cpp.
#pragma once

#include <napi.h>

#include <memory>

#include "state.h"

namespace strata {

class Domain : public Napi::ObjectWrap<Domain> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, DomRef ref, const std::shared_ptr<ConnState>& conn);
  static std::shared_ptr<DomState> StateOf(const Napi::Value& value);
  explicit Domain(const Napi::CallbackInfo& info);

 private:
  // A domain handle stops working only when its connection closes, so its calls reject as the
  // connection's do (with VIR_ERR_INVALID_DOMAIN, naming the domain's connection).
  bool Usable() const { return state_->usable(); }
  Napi::Promise RejectConnectionClosed(Napi::Env env) const;

  Napi::Value Name(const Napi::CallbackInfo& info);
  Napi::Value UUIDString(const Napi::CallbackInfo& info);
  Napi::Value State(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value XMLDesc(const Napi::CallbackInfo& info);
  Napi::Value BlockInfo(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  Napi::Value CreateWithFlags(const Napi::CallbackInfo& info);
  Napi::Value BlockResize(const Napi::CallbackInfo& info);

  Napi::Value SnapshotCreateXML(const Napi::CallbackInfo& info);
  Napi::Value ListAllSnapshots(const Napi::CallbackInfo& info);
  Napi::Value SnapshotLookupByName(const Napi::CallbackInfo& info);

  Napi::Value BlockPull(const Napi::CallbackInfo& info);
  Napi::Value BlockRebase(const Napi::CallbackInfo& info);
  Napi::Value BlockCommit(const Napi::CallbackInfo& info);
  Napi::Value BlockCopy(const Napi::CallbackInfo& info);
  Napi::Value BlockJobInfo(const Napi::CallbackInfo& info);
  Napi::Value BlockJobAbort(const Napi::CallbackInfo& info);
  Napi::Value BlockJobSetSpeed(const Napi::CallbackInfo& info);
  Napi::Value SetBlockThreshold(const Napi::CallbackInfo& info);

  Napi::Value Suspend(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value BackupBegin(const Napi::CallbackInfo& info);
  Napi::Value BackupGetXMLDesc(const Napi::CallbackInfo& info);
  Napi::Value JobStats(const Napi::CallbackInfo& info);
  Napi::Value AbortJob(const Napi::CallbackInfo& info);
  Napi::Value CheckpointCreateXML(const Napi::CallbackInfo& info);
  Napi::Value ListAllCheckpoints(const Napi::CallbackInfo& info);
  Napi::Value CheckpointDelete(const Napi::CallbackInfo& info);

  std::shared_ptr<DomState> state_;
};

}  // namespace strata
