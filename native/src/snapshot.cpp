#include "snapshot.h"

#include <libvirt/virterror.h>

#include <string>
#include <utility>
#include <vector>

#include "addon.h"
#include "args.h"
#include "domain.h"
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

struct SnapshotDesc {
  std::string name;
  std::string xml;
};

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
    throw Napi::TypeError::New(info.Env(), "DomainSnapshot objects come from Domain.snapshotCreateXML() or snapshotLookupByName()");
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
      info.Env(), state_->dom->conn->ops, "virDomainSnapshotGetXMLDesc",
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
      info.Env(), state_->dom->conn->ops, "virDomainSnapshotDelete",
      [ref = state_->ref.Share(), flags]() {
        if (virDomainSnapshotDelete(ref.get(), flags) < 0) ThrowLastError("virDomainSnapshotDelete");
        return 0;
      },
      [](Napi::Env e, int& v) { return Napi::Number::New(e, v); });
}

Napi::Value Domain::SnapshotCreateXML(const Napi::CallbackInfo& info) {
  std::string xml = args::String(info, 0, "xmlDesc");
  unsigned int flags = args::Flags(info, 1, "virDomainSnapshotCreateFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainSnapshotCreateXML",
      [ref = state_->ref.Share(), xml, flags]() {
        virDomainSnapshotPtr s = virDomainSnapshotCreateXML(ref.get(), xml.c_str(), flags);
        if (s == nullptr) ThrowLastError("virDomainSnapshotCreateXML");
        return SnapshotRef::Adopt(s);
      },
      [state = state_](Napi::Env e, SnapshotRef& s) -> Napi::Value { return Snapshot::Wrap(e, std::move(s), state); });
}

// The snapshots' names and descriptions in one call on the queue: a list of handles would cost a
// round trip per snapshot before anything could be shown.
Napi::Value Domain::ListAllSnapshots(const Napi::CallbackInfo& info) {
  unsigned int flags = args::Flags(info, 0, "virDomainSnapshotListFlags");
  unsigned int xmlFlags = args::Flags(info, 1, "virDomainSnapshotXMLFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainListAllSnapshots",
      [ref = state_->ref.Share(), flags, xmlFlags]() {
        virDomainSnapshotPtr* list = nullptr;
        int n = virDomainListAllSnapshots(ref.get(), &list, flags);
        if (n < 0) ThrowLastError("virDomainListAllSnapshots");
        std::vector<SnapshotRef> snapshots;
        snapshots.reserve(static_cast<size_t>(n));
        for (int i = 0; i < n; i++) snapshots.push_back(SnapshotRef::Adopt(list[i]));
        free(list);
        std::vector<SnapshotDesc> out;
        out.reserve(snapshots.size());
        for (const SnapshotRef& s : snapshots) {
          char* xml = virDomainSnapshotGetXMLDesc(s.get(), xmlFlags);
          if (xml == nullptr) {
            LibvirtFailure f = CaptureLastError("virDomainSnapshotGetXMLDesc");
            // Deleted by someone else since the listing: it is no longer one of the domain's.
            if (f.code == VIR_ERR_NO_DOMAIN_SNAPSHOT) continue;
            throw f;
          }
          std::string text(xml);
          free(xml);
          out.push_back({virDomainSnapshotGetName(s.get()), std::move(text)});
        }
        return out;
      },
      [](Napi::Env e, std::vector<SnapshotDesc>& snapshots) -> Napi::Value {
        Napi::Array out = Napi::Array::New(e, snapshots.size());
        for (size_t i = 0; i < snapshots.size(); i++) {
          Napi::Object o = Napi::Object::New(e);
          o.Set("name", Napi::String::New(e, snapshots[i].name));
          o.Set("xml", Napi::String::New(e, snapshots[i].xml));
          out.Set(i, o);
        }
        return out;
      });
}

Napi::Value Domain::SnapshotLookupByName(const Napi::CallbackInfo& info) {
  std::string name = args::String(info, 0, "name");
  args::NoFlags(info, 1, "snapshotLookupByName");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainSnapshotLookupByName",
      [ref = state_->ref.Share(), name]() {
        virDomainSnapshotPtr s = virDomainSnapshotLookupByName(ref.get(), name.c_str(), 0);
        if (s == nullptr) ThrowLastError("virDomainSnapshotLookupByName");
        return SnapshotRef::Adopt(s);
      },
      [state = state_](Napi::Env e, SnapshotRef& s) -> Napi::Value { return Snapshot::Wrap(e, std::move(s), state); });
}

}  // namespace strata
