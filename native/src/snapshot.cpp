#include "snapshot.h"

#include <libvirt/virterror.h>

#include <string>
#include <utility>

#include "addon.h"
#include "args.h"
#include "worker.h"

namespace strata {

namespace {

struct SnapshotInit {
  SnapshotRef ref;
  std::shared_ptr<DomState> dom;
};

LibvirtFailure Closed() {
  return UsageFailure(VIR_ERR_INVALID_DOMAIN_SNAPSHOT, "this snapshot's connection is closed");
}

}  // namespace

Napi::Function Snapshot::Define(Napi::Env env) {
  return DefineClass(env, "DomainSnapshot",
                     {
                         InstanceMethod<&Snapshot::GetName>("getName"),
                         InstanceMethod<&Snapshot::GetXMLDesc>("getXMLDesc"),
                         InstanceMethod<&Snapshot::Delete>("delete"),
                     });
}

Napi::Object Snapshot::Wrap(Napi::Env env, SnapshotRef ref, const std::shared_ptr<DomState>& dom) {
  SnapshotInit init{std::move(ref), dom};
  return Addon::Of(env).snapshotClass.New({Napi::External<SnapshotInit>::New(env, &init)});
}

Snapshot::Snapshot(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Snapshot>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "DomainSnapshot objects come from Domain.snapshotCreateXML()");
  }
  auto* init = info[0].As<Napi::External<SnapshotInit>>().Data();
  state_ = std::make_shared<SnapshotState>();
  state_->ref = std::move(init->ref);
  state_->dom = init->dom;
  ConnState& conn = *state_->dom->conn;
  TrackWeak(conn.snapshots, conn.snapshotsPruneAt, state_);
}

Napi::Value Snapshot::GetName(const Napi::CallbackInfo& info) {
  if (!Usable()) throw ToJsError(info.Env(), Closed());
  return Napi::String::New(info.Env(), virDomainSnapshotGetName(state_->ref.get()));
}

Napi::Value Snapshot::GetXMLDesc(const Napi::CallbackInfo& info) {
  unsigned int flags = args::Flags(info, 0, "virDomainSnapshotXMLFlags");
  if (!Usable()) return Rejected(info.Env(), Closed());
  return RunAsync(
      info.Env(), "virDomainSnapshotGetXMLDesc",
      [ref = state_->ref.Share(), flags]() {
        char* xml = virDomainSnapshotGetXMLDesc(ref.get(), flags);
        if (xml == nullptr) ThrowLastError("virDomainSnapshotGetXMLDesc");
        std::string s(xml);
        free(xml);
        return s;
      },
      [](Napi::Env e, std::string& s) { return Napi::String::New(e, s); });
}

Napi::Value Snapshot::Delete(const Napi::CallbackInfo& info) {
  unsigned int flags = args::Flags(info, 0, "virDomainSnapshotDeleteFlags");
  if (!Usable()) return Rejected(info.Env(), Closed());
  return RunAsync(
      info.Env(), "virDomainSnapshotDelete",
      [ref = state_->ref.Share(), flags]() {
        if (virDomainSnapshotDelete(ref.get(), flags) < 0) ThrowLastError("virDomainSnapshotDelete");
        return 0;
      },
      [](Napi::Env e, int& v) { return Napi::Number::New(e, v); });
}

}  // namespace strata
