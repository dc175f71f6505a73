// A domain's run state and its domain-wide job: suspend and resume, push backups and their job
// statistics and abort, and the checkpoints a backup can record.
//
// Checkpoints are named, not handed out as objects: what Strata does with one (list, delete) is a
// single call each, and a handle would only add a lookup round trip and one more thing to free.
#include <libvirt/virterror.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "domain.h"
#include "typed_params.h"
#include "worker.h"

namespace strata {

namespace {

Napi::Value Zero(Napi::Env e, int& v) { return Napi::Number::New(e, v); }

struct JobStatsResult {
  int type = VIR_DOMAIN_JOB_NONE;
  Fields fields;
};

struct CheckpointDesc {
  std::string name;
  std::optional<std::string> parent;
  std::string xml;
};

std::string TakeString(char* s) {
  std::string out(s);
  free(s);
  return out;
}

}  // namespace

Napi::Value Domain::Suspend(const Napi::CallbackInfo& info) {
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainSuspend",
      [ref = state_->ref.Share()]() {
        if (virDomainSuspend(ref.get()) < 0) ThrowLastError("virDomainSuspend");
        return 0;
      },
      Zero);
}

Napi::Value Domain::Resume(const Napi::CallbackInfo& info) {
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainResume",
      [ref = state_->ref.Share()]() {
        if (virDomainResume(ref.get()) < 0) ThrowLastError("virDomainResume");
        return 0;
      },
      Zero);
}

// Starts a backup job (push mode writes each disk to the target its <domainbackup> names);
// checkpointXml, when given, records a checkpoint at the backup's start for a later incremental.
Napi::Value Domain::BackupBegin(const Napi::CallbackInfo& info) {
  std::string backupXml = args::String(info, 0, "backupXml");
  auto checkpointXml = args::OptionalString(info, 1, "checkpointXml");
  unsigned int flags = args::Flags(info, 2, "virDomainBackupBeginFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainBackupBegin",
      [ref = state_->ref.Share(), backupXml, checkpointXml, flags]() {
        if (virDomainBackupBegin(ref.get(), backupXml.c_str(), args::CStr(checkpointXml), flags) < 0) {
          ThrowLastError("virDomainBackupBegin");
        }
        return 0;
      },
      Zero);
}

Napi::Value Domain::BackupGetXMLDesc(const Napi::CallbackInfo& info) {
  args::NoFlags(info, 0, "backupGetXMLDesc");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainBackupGetXMLDesc",
      [ref = state_->ref.Share()]() {
        char* xml = virDomainBackupGetXMLDesc(ref.get(), 0);
        if (xml == nullptr) ThrowLastError("virDomainBackupGetXMLDesc");
        return TakeString(xml);
      },
      [](Napi::Env e, std::string& s) { return Napi::String::New(e, s); });
}

Napi::Value Domain::JobStats(const Napi::CallbackInfo& info) {
  unsigned int flags = args::Flags(info, 0, "virDomainGetJobStatsFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainGetJobStats",
      [ref = state_->ref.Share(), flags]() {
        JobStatsResult out;
        virTypedParameterPtr params = nullptr;
        int nparams = 0;
        if (virDomainGetJobStats(ref.get(), &out.type, &params, &nparams, flags) < 0) ThrowLastError("virDomainGetJobStats");
        out.fields = CopyTypedParams(params, nparams);
        virTypedParamsFree(params, nparams);
        return out;
      },
      [](Napi::Env e, JobStatsResult& stats) -> Napi::Value {
        Napi::Object out = Napi::Object::New(e);
        out.Set("type", Napi::Number::New(e, stats.type));
        Napi::Object fields = Napi::Object::New(e);
        SetFields(fields, stats.fields);
        out.Set("stats", fields);
        return out;
      });
}

Napi::Value Domain::AbortJob(const Napi::CallbackInfo& info) {
  args::NoFlags(info, 0, "abortJob");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainAbortJob",
      [ref = state_->ref.Share()]() {
        if (virDomainAbortJob(ref.get()) < 0) ThrowLastError("virDomainAbortJob");
        return 0;
      },
      Zero);
}

Napi::Value Domain::CheckpointCreateXML(const Napi::CallbackInfo& info) {
  std::string xml = args::String(info, 0, "xmlDesc");
  unsigned int flags = args::Flags(info, 1, "virDomainCheckpointCreateFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainCheckpointCreateXML",
      [ref = state_->ref.Share(), xml, flags]() {
        CheckpointRef c = CheckpointRef::Adopt(virDomainCheckpointCreateXML(ref.get(), xml.c_str(), flags));
        if (!c) ThrowLastError("virDomainCheckpointCreateXML");
        return std::string(virDomainCheckpointGetName(c.get()));
      },
      [](Napi::Env e, std::string& s) { return Napi::String::New(e, s); });
}

// Names, parents and descriptions in one call on the queue, as listAllSnapshots does.
Napi::Value Domain::ListAllCheckpoints(const Napi::CallbackInfo& info) {
  unsigned int flags = args::Flags(info, 0, "virDomainCheckpointListFlags");
  unsigned int xmlFlags = args::Flags(info, 1, "virDomainCheckpointXMLFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainListAllCheckpoints",
      [ref = state_->ref.Share(), flags, xmlFlags]() {
        virDomainCheckpointPtr* list = nullptr;
        int n = virDomainListAllCheckpoints(ref.get(), &list, flags);
        if (n < 0) ThrowLastError("virDomainListAllCheckpoints");
        std::vector<CheckpointRef> checkpoints;
        checkpoints.reserve(static_cast<size_t>(n));
        for (int i = 0; i < n; i++) checkpoints.push_back(CheckpointRef::Adopt(list[i]));
        free(list);
        std::vector<CheckpointDesc> out;
        out.reserve(checkpoints.size());
        for (const CheckpointRef& c : checkpoints) {
          char* xml = virDomainCheckpointGetXMLDesc(c.get(), xmlFlags);
          if (xml == nullptr) {
            LibvirtFailure f = CaptureLastError("virDomainCheckpointGetXMLDesc");
            // Deleted by someone else since the listing: it is no longer one of the domain's.
            if (f.code == VIR_ERR_NO_DOMAIN_CHECKPOINT) continue;
            throw f;
          }
          CheckpointDesc desc{virDomainCheckpointGetName(c.get()), std::nullopt, TakeString(xml)};
          CheckpointRef parent = CheckpointRef::Adopt(virDomainCheckpointGetParent(c.get(), 0));
          if (parent) {
            desc.parent = virDomainCheckpointGetName(parent.get());
          } else {
            LibvirtFailure f = CaptureLastError("virDomainCheckpointGetParent");
            // A root checkpoint has no parent; any other failure is the listing's.
            if (f.code != VIR_ERR_NO_DOMAIN_CHECKPOINT) throw f;
          }
          out.push_back(std::move(desc));
        }
        return out;
      },
      [](Napi::Env e, std::vector<CheckpointDesc>& checkpoints) -> Napi::Value {
        Napi::Array out = Napi::Array::New(e, checkpoints.size());
        for (size_t i = 0; i < checkpoints.size(); i++) {
          Napi::Object o = Napi::Object::New(e);
          o.Set("name", Napi::String::New(e, checkpoints[i].name));
          o.Set("parent", checkpoints[i].parent ? Napi::Value(Napi::String::New(e, *checkpoints[i].parent)) : e.Null());
          o.Set("xml", Napi::String::New(e, checkpoints[i].xml));
          out.Set(i, o);
        }
        return out;
      });
}

// virDomainCheckpointLookupByName and virDomainCheckpointDelete in one call on the queue.
Napi::Value Domain::CheckpointDelete(const Napi::CallbackInfo& info) {
  std::string name = args::String(info, 0, "checkpoint");
  unsigned int flags = args::Flags(info, 1, "virDomainCheckpointDeleteFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainCheckpointDelete",
      [ref = state_->ref.Share(), name, flags]() {
        CheckpointRef c = CheckpointRef::Adopt(virDomainCheckpointLookupByName(ref.get(), name.c_str(), 0));
        if (!c) ThrowLastError("virDomainCheckpointLookupByName");
        if (virDomainCheckpointDelete(c.get(), flags) < 0) ThrowLastError("virDomainCheckpointDelete");
        return 0;
      },
      Zero);
}

}  // namespace strata
