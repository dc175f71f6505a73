#include "domain.h"

#include <libvirt/virterror.h>

#include <string>
#include <utility>

#include "addon.h"
#include "args.h"
#include "typed_params.h"
#include "worker.h"

namespace strata {

namespace {

const napi_type_tag kDomainTag = {0x2b7e40c15d9a4f36ULL, 0xa3c81f6e07b2495dULL};

struct DomainInit {
  DomRef ref;
  std::shared_ptr<ConnState> conn;
};

Napi::Value Int(Napi::Env env, int v) { return Napi::Number::New(env, v); }

}  // namespace

Napi::Function Domain::Define(Napi::Env env) {
  return DefineClass(env, "Domain",
                     {
                         InstanceMethod<&Domain::Name>("name"),
                         InstanceMethod<&Domain::UUIDString>("UUIDString"),
                         InstanceMethod<&Domain::State>("state"),
                         InstanceMethod<&Domain::Info>("info"),
                         InstanceMethod<&Domain::XMLDesc>("XMLDesc"),
                         InstanceMethod<&Domain::BlockInfo>("blockInfo"),
                         InstanceMethod<&Domain::Stats>("stats"),
                         InstanceMethod<&Domain::Destroy>("destroy"),
                         InstanceMethod<&Domain::CreateWithFlags>("createWithFlags"),
                         InstanceMethod<&Domain::BlockResize>("blockResize"),
                         InstanceMethod<&Domain::SnapshotCreateXML>("snapshotCreateXML"),
                         InstanceMethod<&Domain::ListAllSnapshots>("listAllSnapshots"),
                         InstanceMethod<&Domain::SnapshotLookupByName>("snapshotLookupByName"),
                         InstanceMethod<&Domain::BlockPull>("blockPull"),
                         InstanceMethod<&Domain::BlockRebase>("blockRebase"),
                         InstanceMethod<&Domain::BlockCommit>("blockCommit"),
                         InstanceMethod<&Domain::BlockCopy>("blockCopy"),
                         InstanceMethod<&Domain::BlockJobInfo>("blockJobInfo"),
                         InstanceMethod<&Domain::BlockJobAbort>("blockJobAbort"),
                         InstanceMethod<&Domain::BlockJobSetSpeed>("blockJobSetSpeed"),
                         InstanceMethod<&Domain::SetBlockThreshold>("setBlockThreshold"),
                         InstanceMethod<&Domain::Suspend>("suspend"),
                         InstanceMethod<&Domain::Resume>("resume"),
                         InstanceMethod<&Domain::BackupBegin>("backupBegin"),
                         InstanceMethod<&Domain::BackupGetXMLDesc>("backupGetXMLDesc"),
                         InstanceMethod<&Domain::JobStats>("jobStats"),
                         InstanceMethod<&Domain::AbortJob>("abortJob"),
                         InstanceMethod<&Domain::CheckpointCreateXML>("checkpointCreateXML"),
                         InstanceMethod<&Domain::ListAllCheckpoints>("listAllCheckpoints"),
                         InstanceMethod<&Domain::CheckpointDelete>("checkpointDelete"),
                     });
}

Napi::Object Domain::Wrap(Napi::Env env, DomRef ref, const std::shared_ptr<ConnState>& conn) {
  DomainInit init{std::move(ref), conn};
  return Addon::Of(env).domainClass.New({Napi::External<DomainInit>::New(env, &init)});
}

Domain::Domain(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Domain>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "Domain objects come from a Connection (lookupByName, listAllDomains, createXML)");
  }
  auto* init = info[0].As<Napi::External<DomainInit>>().Data();
  state_ = std::make_shared<DomState>();
  state_->ref = std::move(init->ref);
  state_->conn = init->conn;
  TrackWeak(state_->conn->domains, state_->conn->domainsPruneAt, state_);
  info.This().As<Napi::Object>().TypeTag(&kDomainTag);
}

std::shared_ptr<DomState> Domain::StateOf(const Napi::Value& value) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kDomainTag)) return nullptr;
  return Unwrap(value.As<Napi::Object>())->state_;
}

namespace {
LibvirtFailure ClosedDomain() {
  return UsageFailure(VIR_ERR_INVALID_DOMAIN, "this domain's connection is closed: look the domain up again on an open connection");
}
}  // namespace

Napi::Promise Domain::RejectConnectionClosed(Napi::Env env) const { return Rejected(env, ClosedDomain()); }

Napi::Value Domain::Name(const Napi::CallbackInfo& info) {
  if (!Usable()) throw ToJsError(info.Env(), ClosedDomain());
  // The name is cached in the handle: no round trip to the daemon.
  return Napi::String::New(info.Env(), virDomainGetName(state_->ref.get()));
}

Napi::Value Domain::UUIDString(const Napi::CallbackInfo& info) {
  if (!Usable()) throw ToJsError(info.Env(), ClosedDomain());
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(state_->ref.get(), uuid) < 0) {
    throw ToJsError(info.Env(), CaptureLastError("virDomainGetUUIDString"));
  }
  return Napi::String::New(info.Env(), uuid);
}

Napi::Value Domain::State(const Napi::CallbackInfo& info) {
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainGetState",
      [ref = state_->ref.Share()]() {
        std::pair<int, int> sr{0, 0};
        if (virDomainGetState(ref.get(), &sr.first, &sr.second, 0) < 0) ThrowLastError("virDomainGetState");
        return sr;
      },
      [](Napi::Env e, std::pair<int, int>& sr) -> Napi::Value {
        Napi::Array out = Napi::Array::New(e, 2);
        out.Set(0u, Int(e, sr.first));
        out.Set(1u, Int(e, sr.second));
        return out;
      });
}

Napi::Value Domain::Info(const Napi::CallbackInfo& info) {
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainGetInfo",
      [ref = state_->ref.Share()]() {
        virDomainInfo di{};
        if (virDomainGetInfo(ref.get(), &di) < 0) ThrowLastError("virDomainGetInfo");
        return di;
      },
      [](Napi::Env e, virDomainInfo& di) -> Napi::Value {
        Napi::Object out = Napi::Object::New(e);
        out.Set("state", Int(e, di.state));
        out.Set("maxMemKiB", Napi::Number::New(e, static_cast<double>(di.maxMem)));
        out.Set("memoryKiB", Napi::Number::New(e, static_cast<double>(di.memory)));
        out.Set("nrVirtCpu", Int(e, di.nrVirtCpu));
        out.Set("cpuTimeNs", Napi::Number::New(e, static_cast<double>(di.cpuTime)));
        return out;
      });
}

Napi::Value Domain::XMLDesc(const Napi::CallbackInfo& info) {
  unsigned int flags = args::Flags(info, 0, "virDomainXMLFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainGetXMLDesc",
      [ref = state_->ref.Share(), flags]() {
        char* xml = virDomainGetXMLDesc(ref.get(), flags);
        if (xml == nullptr) ThrowLastError("virDomainGetXMLDesc");
        std::string s(xml);
        free(xml);
        return s;
      },
      [](Napi::Env e, std::string& s) { return Napi::String::New(e, s); });
}

Napi::Value Domain::BlockInfo(const Napi::CallbackInfo& info) {
  std::string disk = args::String(info, 0, "disk");
  args::NoFlags(info, 1, "blockInfo");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainGetBlockInfo",
      [ref = state_->ref.Share(), disk]() {
        virDomainBlockInfo bi{};
        if (virDomainGetBlockInfo(ref.get(), disk.c_str(), &bi, 0) < 0) ThrowLastError("virDomainGetBlockInfo");
        return bi;
      },
      [](Napi::Env e, virDomainBlockInfo& bi) -> Napi::Value {
        Napi::Object out = Napi::Object::New(e);
        out.Set("capacity", Napi::Number::New(e, static_cast<double>(bi.capacity)));
        out.Set("allocation", Napi::Number::New(e, static_cast<double>(bi.allocation)));
        out.Set("physical", Napi::Number::New(e, static_cast<double>(bi.physical)));
        return out;
      });
}

// One domain's statistics. virConnectGetAllDomainStats would read every domain of the host, so
// the cost of showing one domain would grow with the host; virDomainListGetStats asks for this one.
Napi::Value Domain::Stats(const Napi::CallbackInfo& info) {
  unsigned int stats = args::Flags(info, 0, "virDomainStatsTypes");
  unsigned int flags = args::Flags(info, 1, "virConnectGetAllDomainStatsFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainListGetStats",
      [ref = state_->ref.Share(), stats, flags]() {
        virDomainPtr doms[] = {ref.get(), nullptr};
        virDomainStatsRecordPtr* records = nullptr;
        int n = virDomainListGetStats(doms, stats, &records, flags);
        if (n < 0) ThrowLastError("virDomainListGetStats");
        Fields out = n > 0 ? CopyTypedParams(records[0]->params, records[0]->nparams) : Fields{};
        virDomainStatsRecordListFree(records);
        return out;
      },
      [](Napi::Env e, Fields& fields) -> Napi::Value {
        Napi::Object out = Napi::Object::New(e);
        SetFields(out, fields);
        return out;
      });
}

Napi::Value Domain::Destroy(const Napi::CallbackInfo& info) {
  unsigned int flags = args::Flags(info, 0, "virDomainDestroyFlagsValues");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainDestroyFlags",
      [ref = state_->ref.Share(), flags]() {
        if (virDomainDestroyFlags(ref.get(), flags) < 0) ThrowLastError("virDomainDestroyFlags");
        return 0;
      },
      [](Napi::Env e, int& v) { return Napi::Number::New(e, v); });
}

Napi::Value Domain::CreateWithFlags(const Napi::CallbackInfo& info) {
  unsigned int flags = args::Flags(info, 0, "virDomainCreateFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainCreateWithFlags",
      [ref = state_->ref.Share(), flags]() {
        if (virDomainCreateWithFlags(ref.get(), flags) < 0) ThrowLastError("virDomainCreateWithFlags");
        return 0;
      },
      [](Napi::Env e, int& v) { return Napi::Number::New(e, v); });
}

// Grows (or shrinks) a disk's active layer, of a running domain only. Without
// VIR_DOMAIN_BLOCK_RESIZE_BYTES libvirt reads `size` as KiB.
Napi::Value Domain::BlockResize(const Napi::CallbackInfo& info) {
  std::string disk = args::String(info, 0, "disk");
  if (info[1].IsUndefined()) throw Napi::TypeError::New(info.Env(), "size is required (KiB, or bytes with VIR_DOMAIN_BLOCK_RESIZE_BYTES)");
  unsigned long long size = args::Unsigned(info, 1, "size");
  unsigned int flags = args::Flags(info, 2, "virDomainBlockResizeFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainBlockResize",
      [ref = state_->ref.Share(), disk, size, flags]() {
        if (virDomainBlockResize(ref.get(), disk.c_str(), size, flags) < 0) ThrowLastError("virDomainBlockResize");
        return 0;
      },
      [](Napi::Env e, int& v) { return Napi::Number::New(e, v); });
}

}  // namespace strata
