// The block-job family: pull, rebase, commit, copy, and the job's info, abort and speed.
// Argument order and names follow libvirt-python; bandwidth is MiB/s unless the call's
// *_BANDWIDTH_BYTES flag is given (blockCopy's typed parameter is always bytes/s).
#include <libvirt/virterror.h>

#include <optional>
#include <string>
#include <utility>

#include "args.h"
#include "domain.h"
#include "worker.h"

namespace strata {

namespace {

Napi::Value Zero(Napi::Env e, int& v) { return Napi::Number::New(e, v); }

struct BlockJobInfoResult {
  bool active = false;
  virDomainBlockJobInfo info{};
};

struct CopyParams {
  std::optional<unsigned long long> bandwidth;
  std::optional<unsigned int> granularity;
  std::optional<unsigned long long> bufSize;
};

unsigned long long ParamUnsigned(Napi::Env env, Napi::Value v, const std::string& key) {
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t n = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(env, "params['" + key + "'] must be from 0 to 2^64-1");
    return n;
  }
  if (!v.IsNumber()) throw Napi::TypeError::New(env, "params['" + key + "'] must be a number or a bigint");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != static_cast<double>(static_cast<unsigned long long>(d)) || d > 9007199254740991.0) {
    throw Napi::RangeError::New(env, "params['" + key + "'] must be a whole number from 0 to 2^53-1");
  }
  return static_cast<unsigned long long>(d);
}

CopyParams ParseCopyParams(Napi::Env env, Napi::Value v) {
  CopyParams p;
  if (v.IsUndefined() || v.IsNull()) return p;
  if (!v.IsObject()) throw Napi::TypeError::New(env, "params must be an object keyed by VIR_DOMAIN_BLOCK_COPY_* names");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value value = o.Get(key);
    if (value.IsUndefined()) continue;
    if (key == VIR_DOMAIN_BLOCK_COPY_BANDWIDTH) {
      p.bandwidth = ParamUnsigned(env, value, key);
    } else if (key == VIR_DOMAIN_BLOCK_COPY_GRANULARITY) {
      unsigned long long g = ParamUnsigned(env, value, key);
      if (g > 0xffffffffULL) throw Napi::RangeError::New(env, "params['granularity'] must fit in 32 bits");
      p.granularity = static_cast<unsigned int>(g);
    } else if (key == VIR_DOMAIN_BLOCK_COPY_BUF_SIZE) {
      p.bufSize = ParamUnsigned(env, value, key);
    } else {
      throw Napi::RangeError::New(env, "params has unknown key '" + key + "': use bandwidth, granularity or buf-size");
    }
  }
  return p;
}

// Owns a typed-parameter array built on the worker thread.
class TypedParams {
 public:
  TypedParams() = default;
  TypedParams(const TypedParams&) = delete;
  TypedParams& operator=(const TypedParams&) = delete;
  ~TypedParams() { virTypedParamsFree(params_, n_); }
  void AddULLong(const char* key, unsigned long long v) {
    if (virTypedParamsAddULLong(&params_, &n_, &max_, key, v) < 0) ThrowLastError("virTypedParamsAddULLong");
  }
  void AddUInt(const char* key, unsigned int v) {
    if (virTypedParamsAddUInt(&params_, &n_, &max_, key, v) < 0) ThrowLastError("virTypedParamsAddUInt");
  }
  virTypedParameterPtr data() const { return params_; }
  int size() const { return n_; }

 private:
  virTypedParameterPtr params_ = nullptr;
  int n_ = 0;
  int max_ = 0;
};

}  // namespace

Napi::Value Domain::BlockPull(const Napi::CallbackInfo& info) {
  std::string disk = args::String(info, 0, "disk");
  unsigned long long bandwidth = args::Unsigned(info, 1, "bandwidth");
  unsigned int flags = args::Flags(info, 2, "virDomainBlockPullFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainBlockPull",
      [ref = state_->ref.Share(), disk, bandwidth, flags]() {
        if (virDomainBlockPull(ref.get(), disk.c_str(), bandwidth, flags) < 0) ThrowLastError("virDomainBlockPull");
        return 0;
      },
      Zero);
}

Napi::Value Domain::BlockRebase(const Napi::CallbackInfo& info) {
  std::string disk = args::String(info, 0, "disk");
  auto base = args::OptionalString(info, 1, "base");
  unsigned long long bandwidth = args::Unsigned(info, 2, "bandwidth");
  unsigned int flags = args::Flags(info, 3, "virDomainBlockRebaseFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainBlockRebase",
      [ref = state_->ref.Share(), disk, base, bandwidth, flags]() {
        if (virDomainBlockRebase(ref.get(), disk.c_str(), args::CStr(base), bandwidth, flags) < 0) {
          ThrowLastError("virDomainBlockRebase");
        }
        return 0;
      },
      Zero);
}

Napi::Value Domain::BlockCommit(const Napi::CallbackInfo& info) {
  std::string disk = args::String(info, 0, "disk");
  auto base = args::OptionalString(info, 1, "base");
  auto top = args::OptionalString(info, 2, "top");
  unsigned long long bandwidth = args::Unsigned(info, 3, "bandwidth");
  unsigned int flags = args::Flags(info, 4, "virDomainBlockCommitFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainBlockCommit",
      [ref = state_->ref.Share(), disk, base, top, bandwidth, flags]() {
        if (virDomainBlockCommit(ref.get(), disk.c_str(), args::CStr(base), args::CStr(top), bandwidth, flags) < 0) {
          ThrowLastError("virDomainBlockCommit");
        }
        return 0;
      },
      Zero);
}

Napi::Value Domain::BlockCopy(const Napi::CallbackInfo& info) {
  std::string disk = args::String(info, 0, "disk");
  std::string destxml = args::String(info, 1, "destxml");
  CopyParams params = ParseCopyParams(info.Env(), info[2]);
  unsigned int flags = args::Flags(info, 3, "virDomainBlockCopyFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainBlockCopy",
      [ref = state_->ref.Share(), disk, destxml, params, flags]() {
        TypedParams tp;
        if (params.bandwidth) tp.AddULLong(VIR_DOMAIN_BLOCK_COPY_BANDWIDTH, *params.bandwidth);
        if (params.granularity) tp.AddUInt(VIR_DOMAIN_BLOCK_COPY_GRANULARITY, *params.granularity);
        if (params.bufSize) tp.AddULLong(VIR_DOMAIN_BLOCK_COPY_BUF_SIZE, *params.bufSize);
        if (virDomainBlockCopy(ref.get(), disk.c_str(), destxml.c_str(), tp.data(), tp.size(), flags) < 0) {
          ThrowLastError("virDomainBlockCopy");
        }
        return 0;
      },
      Zero);
}

Napi::Value Domain::BlockJobInfo(const Napi::CallbackInfo& info) {
  std::string disk = args::String(info, 0, "disk");
  unsigned int flags = args::Flags(info, 1, "virDomainBlockJobInfoFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainGetBlockJobInfo",
      [ref = state_->ref.Share(), disk, flags]() {
        BlockJobInfoResult r;
        int rc = virDomainGetBlockJobInfo(ref.get(), disk.c_str(), &r.info, flags);
        if (rc < 0) ThrowLastError("virDomainGetBlockJobInfo");
        r.active = rc == 1;
        return r;
      },
      [](Napi::Env e, BlockJobInfoResult& r) -> Napi::Value {
        // Like libvirt-python: an empty object when the disk has no job.
        Napi::Object out = Napi::Object::New(e);
        if (!r.active) return out;
        out.Set("type", Napi::Number::New(e, r.info.type));
        out.Set("bandwidth", Napi::Number::New(e, static_cast<double>(r.info.bandwidth)));
        out.Set("cur", Napi::Number::New(e, static_cast<double>(r.info.cur)));
        out.Set("end", Napi::Number::New(e, static_cast<double>(r.info.end)));
        return out;
      });
}

Napi::Value Domain::BlockJobAbort(const Napi::CallbackInfo& info) {
  std::string disk = args::String(info, 0, "disk");
  unsigned int flags = args::Flags(info, 1, "virDomainBlockJobAbortFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainBlockJobAbort",
      [ref = state_->ref.Share(), disk, flags]() {
        if (virDomainBlockJobAbort(ref.get(), disk.c_str(), flags) < 0) ThrowLastError("virDomainBlockJobAbort");
        return 0;
      },
      Zero);
}

Napi::Value Domain::BlockJobSetSpeed(const Napi::CallbackInfo& info) {
  std::string disk = args::String(info, 0, "disk");
  if (info[1].IsUndefined()) throw Napi::TypeError::New(info.Env(), "bandwidth is required (0 means unlimited)");
  unsigned long long bandwidth = args::Unsigned(info, 1, "bandwidth");
  unsigned int flags = args::Flags(info, 2, "virDomainBlockJobSetSpeedFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainBlockJobSetSpeed",
      [ref = state_->ref.Share(), disk, bandwidth, flags]() {
        if (virDomainBlockJobSetSpeed(ref.get(), disk.c_str(), bandwidth, flags) < 0) {
          ThrowLastError("virDomainBlockJobSetSpeed");
        }
        return 0;
      },
      Zero);
}

Napi::Value Domain::SetBlockThreshold(const Napi::CallbackInfo& info) {
  std::string dev = args::String(info, 0, "dev");
  if (info[1].IsUndefined()) throw Napi::TypeError::New(info.Env(), "threshold is required (bytes; 0 clears it)");
  unsigned long long threshold = args::Unsigned(info, 1, "threshold");
  args::NoFlags(info, 2, "setBlockThreshold");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->conn->ops, "virDomainSetBlockThreshold",
      [ref = state_->ref.Share(), dev, threshold]() {
        if (virDomainSetBlockThreshold(ref.get(), dev.c_str(), threshold, 0) < 0) {
          ThrowLastError("virDomainSetBlockThreshold");
        }
        return 0;
      },
      Zero);
}

}  // namespace strata
