#include "connection.h"

#include <libvirt/virterror.h>

#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "addon.h"
#include "args.h"
#include "domain.h"
#include "close_callback.h"
#include "event_fanout.h"
#include "events.h"
#include "typed_params.h"
#include "worker.h"

namespace strata {

namespace {

const napi_type_tag kConnectionTag = {0x5a1c0e3b7d2f4a91ULL, 0x8e6b13c2f0d94a57ULL};

struct OpenedConnection {
  ConnRef ref;
  bool readOnly;
  bool overLink;
};

// Whether the connection's RPC runs over a network link or a program (ssh, ext, tls, tcp), where
// keepalive can declare the peer dead while calls wait on it: `uri` as libvirt resolved it. A
// local daemon's UNIX socket (qemu:///system, qemu+unix://) and in-process drivers are not.
bool OverLink(const char* uri) {
  if (uri == nullptr) return false;
  std::string_view u(uri);
  size_t schemeEnd = u.find("://");
  if (schemeEnd == std::string_view::npos) return false;
  std::string_view scheme = u.substr(0, schemeEnd);
  if (size_t plus = scheme.find('+'); plus != std::string_view::npos) return scheme.substr(plus + 1) != "unix";
  std::string_view rest = u.substr(schemeEnd + 3);
  return !rest.empty() && rest.front() != '/';
}

Napi::Value MakeConnection(Napi::Env env, OpenedConnection& opened) {
  return Addon::Of(env).connectionClass.New({Napi::External<OpenedConnection>::New(env, &opened)});
}

std::vector<DomRef> TakeDomainList(virDomainPtr* list, int count) {
  std::vector<DomRef> domains;
  domains.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; i++) domains.push_back(DomRef::Adopt(list[i]));
  free(list);
  return domains;
}

}  // namespace

ConnState::ConnState() : ops(std::make_shared<OpSequence>()) {}

ConnState::~ConnState() {
  if (!ref) return;
  // A finalizer: no environment to queue a call on, so a thread of its own, which drops the
  // registrations and the reference after any operation already queued on this connection.
  std::vector<int> events = DetachAllEvents(*this);
  std::thread([ref = std::move(ref), events, callback = std::move(closeCallback), turn = Turn(ops)]() mutable {
    turn.Wait();
    for (int id : events) virConnectDomainEventDeregisterAny(ref.get(), id);
    DropCloseCallback(ref.get(), callback);
    turn.Done();
    virResetLastError();
    ref.Reset();
  }).detach();
}

Napi::Function Connection::Define(Napi::Env env) {
  return DefineClass(env, "Connection",
                     {
                         InstanceMethod<&Connection::Close>("close"),
                         InstanceMethod<&Connection::IsAlive>("isAlive"),
                         InstanceMethod<&Connection::IsClosed>("isClosed"),
                         InstanceMethod<&Connection::GetURI>("getURI"),
                         InstanceMethod<&Connection::GetHostname>("getHostname"),
                         InstanceMethod<&Connection::GetLibVersion>("getLibVersion"),
                         InstanceMethod<&Connection::GetVersion>("getVersion"),
                         InstanceMethod<&Connection::GetType>("getType"),
                         InstanceMethod<&Connection::GetCapabilities>("getCapabilities"),
                         InstanceMethod<&Connection::GetDomainCapabilities>("getDomainCapabilities"),
                         InstanceMethod<&Connection::SetKeepAlive>("setKeepAlive"),
                         InstanceMethod<&Connection::RegisterCloseCallback>("registerCloseCallback"),
                         InstanceMethod<&Connection::UnregisterCloseCallback>("unregisterCloseCallback"),
                         InstanceMethod<&Connection::ListAllDomains>("listAllDomains"),
                         InstanceMethod<&Connection::GetAllDomainStats>("getAllDomainStats"),
                         InstanceMethod<&Connection::LookupByName>("lookupByName"),
                         InstanceMethod<&Connection::LookupByUUIDString>("lookupByUUIDString"),
                         InstanceMethod<&Connection::CreateXML>("createXML"),
                         InstanceMethod<&Connection::DefineXML>("defineXML"),
                         InstanceMethod<&Connection::DomainEventRegisterAny>("domainEventRegisterAny"),
                         InstanceMethod<&Connection::DomainEventDeregisterAny>("domainEventDeregisterAny"),
                     });
}

Connection::Connection(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Connection>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "Connection objects come from open() or openReadOnly()");
  }
  auto* opened = info[0].As<Napi::External<OpenedConnection>>().Data();
  state_ = std::make_shared<ConnState>();
  state_->ref = std::move(opened->ref);
  state_->readOnly = opened->readOnly;
  state_->ops->serialCalls = opened->overLink;
  info.This().As<Napi::Object>().TypeTag(&kConnectionTag);
}

std::shared_ptr<ConnState> Connection::StateOf(const Napi::Value& value) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kConnectionTag)) return nullptr;
  return Unwrap(value.As<Napi::Object>())->state_;
}

Napi::Value Connection::Open(const Napi::CallbackInfo& info) { return OpenWith(info, false); }
Napi::Value Connection::OpenReadOnly(const Napi::CallbackInfo& info) { return OpenWith(info, true); }

Napi::Value Connection::OpenWith(const Napi::CallbackInfo& info, bool readOnly) {
  auto uri = args::OptionalString(info, 0, "uri");
  return RunAsync(
      info.Env(), readOnly ? "virConnectOpenReadOnly" : "virConnectOpen",
      [uri, readOnly]() {
        virConnectPtr c = readOnly ? virConnectOpenReadOnly(args::CStr(uri)) : virConnectOpen(args::CStr(uri));
        if (c == nullptr) ThrowLastError("virConnectOpen");
        ConnRef ref = ConnRef::Adopt(c);
        // The remote driver formats its URI itself (no call to the daemon).
        char* resolved = virConnectGetURI(c);
        bool overLink = OverLink(resolved);
        free(resolved);
        virResetLastError();
        return OpenedConnection{std::move(ref), readOnly, overLink};
      },
      MakeConnection);
}

Napi::Promise Connection::RejectConnectionClosed(Napi::Env env) const {
  return Rejected(env, UsageFailure(VIR_ERR_INVALID_CONN, "this connection is closed: open a new one"));
}

Napi::Value Connection::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(Napi::Number::New(env, 0));
    return d.Promise();
  }
  state_->closed = true;
  // Domains of this connection become unusable at once; their libvirt references go now so the
  // connection really closes instead of lingering until the garbage collector runs.
  for (auto& weak : state_->snapshots) {
    if (auto snapshot = weak.lock()) snapshot->ref.Reset();
  }
  state_->snapshots.clear();
  for (auto& weak : state_->domains) {
    if (auto dom = weak.lock()) dom->ref.Reset();
  }
  state_->domains.clear();
  std::vector<int> callbacks = DetachAllEvents(*state_);
  std::shared_ptr<CloseCallback> closeCallback = std::exchange(state_->closeCallback, nullptr);
  return RunAsync(
      env, "virConnectClose",
      [ref = std::move(state_->ref), callbacks, closeCallback, turn = Turn(state_->ops)]() mutable {
        turn.Wait();
        for (int id : callbacks) virConnectDomainEventDeregisterAny(ref.get(), id);
        DropCloseCallback(ref.get(), closeCallback);
        turn.Done();
        virResetLastError();
        // The last reference goes here, off the JS thread: closing a remote connection talks
        // to the daemon.
        ref.Reset();
        return 0;
      },
      [](Napi::Env e, int& v) { return Napi::Number::New(e, v); });
}

Napi::Value Connection::IsAlive(const Napi::CallbackInfo& info) {
  if (!Usable()) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), virConnectIsAlive(state_->ref.get()) == 1);
}

Napi::Value Connection::IsClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !Usable());
}

Napi::Value Connection::GetURI(const Napi::CallbackInfo& info) {
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virConnectGetURI",
      [ref = state_->ref.Share()]() {
        char* uri = virConnectGetURI(ref.get());
        if (uri == nullptr) ThrowLastError("virConnectGetURI");
        std::string s(uri);
        free(uri);
        return s;
      },
      [](Napi::Env e, std::string& s) { return Napi::String::New(e, s); });
}

Napi::Value Connection::GetHostname(const Napi::CallbackInfo& info) {
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virConnectGetHostname",
      [ref = state_->ref.Share()]() {
        char* host = virConnectGetHostname(ref.get());
        if (host == nullptr) ThrowLastError("virConnectGetHostname");
        std::string s(host);
        free(host);
        return s;
      },
      [](Napi::Env e, std::string& s) { return Napi::String::New(e, s); });
}

Napi::Value Connection::GetLibVersion(const Napi::CallbackInfo& info) {
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virConnectGetLibVersion",
      [ref = state_->ref.Share()]() {
        unsigned long v = 0;
        if (virConnectGetLibVersion(ref.get(), &v) < 0) ThrowLastError("virConnectGetLibVersion");
        return v;
      },
      [](Napi::Env e, unsigned long& v) { return Napi::Number::New(e, static_cast<double>(v)); });
}

Napi::Value Connection::GetVersion(const Napi::CallbackInfo& info) {
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virConnectGetVersion",
      [ref = state_->ref.Share()]() {
        unsigned long v = 0;
        if (virConnectGetVersion(ref.get(), &v) < 0) ThrowLastError("virConnectGetVersion");
        return v;
      },
      [](Napi::Env e, unsigned long& v) { return Napi::Number::New(e, static_cast<double>(v)); });
}

// The driver's name ("QEMU", "Test"); the remote driver asks the daemon once, so off the JS thread.
Napi::Value Connection::GetType(const Napi::CallbackInfo& info) {
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virConnectGetType",
      [ref = state_->ref.Share()]() {
        // A static string of the driver's: not freed.
        const char* type = virConnectGetType(ref.get());
        if (type == nullptr) ThrowLastError("virConnectGetType");
        return std::string(type);
      },
      [](Napi::Env e, std::string& s) { return Napi::String::New(e, s); });
}

Napi::Value Connection::GetCapabilities(const Napi::CallbackInfo& info) {
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virConnectGetCapabilities",
      [ref = state_->ref.Share()]() {
        char* xml = virConnectGetCapabilities(ref.get());
        if (xml == nullptr) ThrowLastError("virConnectGetCapabilities");
        std::string s(xml);
        free(xml);
        return s;
      },
      [](Napi::Env e, std::string& s) { return Napi::String::New(e, s); });
}

// Every criterion may be null: libvirt then picks the host's default emulator, architecture,
// machine type or virtualization type.
Napi::Value Connection::GetDomainCapabilities(const Napi::CallbackInfo& info) {
  auto emulatorbin = args::OptionalString(info, 0, "emulatorbin");
  auto arch = args::OptionalString(info, 1, "arch");
  auto machine = args::OptionalString(info, 2, "machine");
  auto virttype = args::OptionalString(info, 3, "virttype");
  args::NoFlags(info, 4, "getDomainCapabilities");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virConnectGetDomainCapabilities",
      [ref = state_->ref.Share(), emulatorbin, arch, machine, virttype]() {
        char* xml = virConnectGetDomainCapabilities(ref.get(), args::CStr(emulatorbin), args::CStr(arch), args::CStr(machine),
                                                    args::CStr(virttype), 0);
        if (xml == nullptr) ThrowLastError("virConnectGetDomainCapabilities");
        std::string s(xml);
        free(xml);
        return s;
      },
      [](Napi::Env e, std::string& s) { return Napi::String::New(e, s); });
}

Napi::Value Connection::SetKeepAlive(const Napi::CallbackInfo& info) {
  int interval = static_cast<int>(args::Int(info, 0, "interval", -1, 86400));
  auto count = static_cast<unsigned int>(args::Int(info, 1, "count", 0, 1000));
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virConnectSetKeepAlive",
      [ref = state_->ref.Share(), interval, count]() {
        int r = virConnectSetKeepAlive(ref.get(), interval, count);
        if (r < 0) ThrowLastError("virConnectSetKeepAlive");
        return r;
      },
      [](Napi::Env e, int& v) { return Napi::Number::New(e, v); });
}

Napi::Value Connection::RegisterCloseCallback(const Napi::CallbackInfo& info) {
  Napi::Function callback = args::Function(info, 0, "callback");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return strata::RegisterCloseCallback(info.Env(), state_, callback);
}

Napi::Value Connection::UnregisterCloseCallback(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(Napi::Boolean::New(env, false));
    return d.Promise();
  }
  return strata::UnregisterCloseCallback(env, state_);
}

Napi::Value Connection::ListAllDomains(const Napi::CallbackInfo& info) {
  unsigned int flags = args::Flags(info, 0, "virConnectListAllDomainsFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virConnectListAllDomains",
      [ref = state_->ref.Share(), flags]() {
        virDomainPtr* list = nullptr;
        int n = virConnectListAllDomains(ref.get(), &list, flags);
        if (n < 0) ThrowLastError("virConnectListAllDomains");
        return TakeDomainList(list, n);
      },
      [state = state_](Napi::Env e, std::vector<DomRef>& domains) -> Napi::Value {
        Napi::Array out = Napi::Array::New(e, domains.size());
        for (size_t i = 0; i < domains.size(); i++) out.Set(i, Domain::Wrap(e, std::move(domains[i]), state));
        return out;
      });
}

namespace {
struct StatsRecord {
  DomRef domain;
  Fields stats;
};
}  // namespace

Napi::Value Connection::GetAllDomainStats(const Napi::CallbackInfo& info) {
  unsigned int stats = args::Flags(info, 0, "virDomainStatsTypes");
  unsigned int flags = args::Flags(info, 1, "virConnectGetAllDomainStatsFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virConnectGetAllDomainStats",
      [ref = state_->ref.Share(), stats, flags]() {
        virDomainStatsRecordPtr* records = nullptr;
        int n = virConnectGetAllDomainStats(ref.get(), stats, &records, flags);
        if (n < 0) ThrowLastError("virConnectGetAllDomainStats");
        std::vector<StatsRecord> out;
        out.reserve(static_cast<size_t>(n));
        for (int i = 0; i < n; i++) {
          out.push_back({DomRef::Share(records[i]->dom), CopyTypedParams(records[i]->params, records[i]->nparams)});
        }
        virDomainStatsRecordListFree(records);
        return out;
      },
      [state = state_](Napi::Env e, std::vector<StatsRecord>& records) -> Napi::Value {
        Napi::Array out = Napi::Array::New(e, records.size());
        for (size_t i = 0; i < records.size(); i++) {
          Napi::Object stats = Napi::Object::New(e);
          SetFields(stats, records[i].stats);
          Napi::Array pair = Napi::Array::New(e, 2);
          pair.Set(0u, Domain::Wrap(e, std::move(records[i].domain), state));
          pair.Set(1u, stats);
          out.Set(i, pair);
        }
        return out;
      });
}

Napi::Value Connection::LookupByName(const Napi::CallbackInfo& info) {
  std::string name = args::String(info, 0, "name");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virDomainLookupByName",
      [ref = state_->ref.Share(), name]() {
        virDomainPtr d = virDomainLookupByName(ref.get(), name.c_str());
        if (d == nullptr) ThrowLastError("virDomainLookupByName");
        return DomRef::Adopt(d);
      },
      [state = state_](Napi::Env e, DomRef& d) { return Domain::Wrap(e, std::move(d), state); });
}

Napi::Value Connection::LookupByUUIDString(const Napi::CallbackInfo& info) {
  std::string uuid = args::String(info, 0, "uuid");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virDomainLookupByUUIDString",
      [ref = state_->ref.Share(), uuid]() {
        virDomainPtr d = virDomainLookupByUUIDString(ref.get(), uuid.c_str());
        if (d == nullptr) ThrowLastError("virDomainLookupByUUIDString");
        return DomRef::Adopt(d);
      },
      [state = state_](Napi::Env e, DomRef& d) { return Domain::Wrap(e, std::move(d), state); });
}

Napi::Value Connection::CreateXML(const Napi::CallbackInfo& info) {
  std::string xml = args::String(info, 0, "xml");
  unsigned int flags = args::Flags(info, 1, "virDomainCreateFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virDomainCreateXML",
      [ref = state_->ref.Share(), xml, flags]() {
        virDomainPtr d = virDomainCreateXML(ref.get(), xml.c_str(), flags);
        if (d == nullptr) ThrowLastError("virDomainCreateXML");
        return DomRef::Adopt(d);
      },
      [state = state_](Napi::Env e, DomRef& d) { return Domain::Wrap(e, std::move(d), state); });
}

// Makes the domain persistent, or replaces the persistent definition of one that exists (a running
// domain keeps its live definition until it stops).
Napi::Value Connection::DefineXML(const Napi::CallbackInfo& info) {
  std::string xml = args::String(info, 0, "xml");
  unsigned int flags = args::Flags(info, 1, "virDomainDefineFlags");
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return RunAsync(
      info.Env(), state_->ops, "virDomainDefineXMLFlags",
      [ref = state_->ref.Share(), xml, flags]() {
        virDomainPtr d = virDomainDefineXMLFlags(ref.get(), xml.c_str(), flags);
        if (d == nullptr) ThrowLastError("virDomainDefineXMLFlags");
        return DomRef::Adopt(d);
      },
      [state = state_](Napi::Env e, DomRef& d) { return Domain::Wrap(e, std::move(d), state); });
}

Napi::Value Connection::DomainEventRegisterAny(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<DomState> dom;
  if (!info[0].IsNull() && !info[0].IsUndefined()) {
    dom = Domain::StateOf(info[0]);
    if (!dom) throw Napi::TypeError::New(env, "dom must be a Domain of this connection, or null for every domain");
    if (dom->conn != state_) throw Napi::TypeError::New(env, "dom belongs to another connection");
  }
  int eventID = static_cast<int>(args::Int(info, 1, "eventID", 0, 1 << 20));
  Napi::Function callback = args::Function(info, 2, "callback");
  CheckEventIsBound(env, eventID);
  if (!Usable()) return RejectConnectionClosed(env);
  if (dom && !dom->usable()) return RejectConnectionClosed(env);
  return RegisterDomainEvent(env, state_, dom ? dom->ref.Share() : DomRef(), eventID, callback);
}

Napi::Value Connection::DomainEventDeregisterAny(const Napi::CallbackInfo& info) {
  int id = static_cast<int>(args::Int(info, 0, "callbackID", 0, 2147483647));
  if (!Usable()) return RejectConnectionClosed(info.Env());
  return DeregisterDomainEvent(info.Env(), state_, id);
}

}  // namespace strata
