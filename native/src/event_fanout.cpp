#include "event_fanout.h"

#include <libvirt/virterror.h>

#include "close_callback.h"
#include "errors.h"
#include "worker.h"

namespace strata {

void CallEventListener(Napi::Env env, Napi::Function callback, std::nullptr_t*, EventPayload* payload) {
  std::unique_ptr<EventPayload> owned(payload);
  if (env == nullptr || callback.IsEmpty()) return;
  Napi::Object event = Napi::Object::New(env);
  event.Set("eventID", payload->eventID);
  event.Set("domainName", payload->domainName);
  event.Set("domainUUID", payload->domainUUID);
  SetFields(event, payload->fields);
  callback.Call({event});
}

void Fanout::Deliver(const EventPayload& payload) {
  std::lock_guard<std::mutex> lock(mutex);
  for (auto& [id, tsfn] : listeners) {
    auto* copy = new EventPayload(payload);
    if (tsfn.NonBlockingCall(copy) != napi_ok) delete copy;
  }
}

void Fanout::ReleaseAll() {
  std::lock_guard<std::mutex> lock(mutex);
  for (auto& [id, tsfn] : listeners) tsfn.Release();
  listeners.clear();
}

bool Fanout::Remove(int listenerId) {
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = listeners.begin(); it != listeners.end(); ++it) {
    if (it->first == listenerId) {
      it->second.Release();
      listeners.erase(it);
      return true;
    }
  }
  return false;
}

namespace {

// libvirt's free callback: runs on whichever thread drops the registration. Listeners still
// attached (a connection collected without close()) are released so the process can exit.
void FreeFanout(void* opaque) {
  auto* fanout = static_cast<Fanout*>(opaque);
  fanout->ReleaseAll();
  delete fanout;
}

std::string KeyOf(int eventID, const DomRef& dom) {
  std::string key = std::to_string(eventID) + ":";
  if (!dom) return key + "*";
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(dom.get(), uuid) == 0) key += uuid;
  return key;
}

LibvirtFailure ClosedFailure() { return UsageFailure(VIR_ERR_INVALID_CONN, "the connection was closed while the callback was being registered"); }

void Forget(ConnState& conn, const std::string& key, Fanout* fanout) {
  auto it = conn.fanouts.find(key);
  if (it != conn.fanouts.end() && it->second == fanout) conn.fanouts.erase(it);
  for (auto l = conn.listenerKeys.begin(); l != conn.listenerKeys.end();) {
    l = l->second == key ? conn.listenerKeys.erase(l) : std::next(l);
  }
}

class RegisterCall final : public QueuedCall {
 public:
  // Constructed right before it is submitted: the ticket orders it among the connection's other
  // registrations (see OpSequence).
  RegisterCall(std::shared_ptr<ConnState> conn, DomRef dom, Fanout* fanout, std::string key)
      : conn_(std::move(conn)),
        ref_(conn_->ref.Share()),
        dom_(std::move(dom)),
        fanout_(fanout),
        key_(std::move(key)),
        turn_(conn_->ops) {}

  void Run() override {
    turn_.Wait();
    id_ = virConnectDomainEventRegisterAny(ref_.get(), dom_.get(), fanout_->eventID, CallbackFor(fanout_->eventID), fanout_,
                                           FreeFanout);
    if (id_ < 0) failure_ = CaptureLastError("virConnectDomainEventRegisterAny");
    turn_.Done();
    ran_ = true;
    // Off the JS thread, like every call's references (see worker.h); the connection's is still
    // needed to drop a registration that lands after close().
    dom_.Reset();
    if (id_ < 0) ref_.Reset();
  }

  // The connection's state goes on this thread; its cleanup deregisters what libvirt registered.
  // A fan-out never registered is dropped with its listeners, whose Promises stay unsettled.
  void Abandon(Napi::Env) override {
    if (ran_ && id_ >= 0) {
      if (conn_->closed) deregisterOnDestroy_ = true;
      else fanout_->libvirtId = id_;
    } else {
      if (!conn_->closed) Forget(*conn_, key_, fanout_);
      fanout_->ReleaseAll();
      delete fanout_;
    }
    fanout_ = nullptr;
    conn_.reset();
  }

  ~RegisterCall() override {
    if (deregisterOnDestroy_) {
      virConnectDomainEventDeregisterAny(ref_.get(), id_);
      virResetLastError();
    }
  }

  void Settle(Napi::Env env) override {
    Napi::HandleScope scope(env);
    if (id_ < 0) {
      Failed(env);
    } else {
      Registered(env);
    }
  }

 private:
  void Registered(Napi::Env env) {
    auto waiters = std::move(fanout_->waiters);
    bool empty;
    {
      std::lock_guard<std::mutex> lock(fanout_->mutex);
      empty = fanout_->listeners.empty();
    }
    if (conn_->closed || empty) {
      // Closed, or every listener left, while libvirt was registering: drop it again. libvirt
      // now owns the fan-out and frees it.
      if (!conn_->closed) Forget(*conn_, key_, fanout_);
      RunAsync(
          env, "virConnectDomainEventDeregisterAny",
          [ref = std::move(ref_), id = id_, turn = Turn(conn_->ops)]() mutable {
            turn.Wait();
            virConnectDomainEventDeregisterAny(ref.get(), id);
            turn.Done();
            virResetLastError();
            return 0;
          },
          [](Napi::Env e, int&) { return e.Undefined(); });
      for (auto& [listenerId, deferred] : waiters) {
        if (conn_->closed) deferred.Reject(ToJsError(env, ClosedFailure()).Value());
        else deferred.Resolve(Napi::Number::New(env, listenerId));
      }
      return;
    }
    fanout_->libvirtId = id_;
    for (auto& [listenerId, deferred] : waiters) deferred.Resolve(Napi::Number::New(env, listenerId));
  }

  void Failed(Napi::Env env) {
    // libvirt took no ownership: the fan-out and its listeners are ours to drop.
    auto waiters = std::move(fanout_->waiters);
    if (!conn_->closed) Forget(*conn_, key_, fanout_);
    fanout_->ReleaseAll();
    delete fanout_;
    for (auto& [listenerId, deferred] : waiters) deferred.Reject(ToJsError(env, failure_).Value());
  }

  std::shared_ptr<ConnState> conn_;
  ConnRef ref_;
  DomRef dom_;
  Fanout* fanout_;
  std::string key_;
  Turn turn_;
  bool ran_ = false;
  bool deregisterOnDestroy_ = false;
  int id_ = -1;
  LibvirtFailure failure_;
};

}  // namespace

Napi::Promise RegisterDomainEvent(Napi::Env env, const std::shared_ptr<ConnState>& conn, DomRef dom, int eventID,
                                  Napi::Function callback) {
  std::string key = KeyOf(eventID, dom);
  int listenerId = conn->nextListenerId++;
  EventTsfn tsfn = EventTsfn::New(env, callback, "strata-libvirt-event", 0, 1);
  // Listening is no reason for the process to stay alive (as with an unref'd timer): a process
  // that forgot a listener, or whose Connection was collected with one, still exits.
  tsfn.Unref(env);
  auto deferred = Napi::Promise::Deferred::New(env);
  Napi::Promise promise = deferred.Promise();

  auto found = conn->fanouts.find(key);
  Fanout* fanout = found != conn->fanouts.end() ? found->second : nullptr;
  bool fresh = fanout == nullptr;
  if (fresh) {
    fanout = new Fanout(eventID);
    conn->fanouts.emplace(key, fanout);
  }
  {
    std::lock_guard<std::mutex> lock(fanout->mutex);
    fanout->listeners.emplace_back(listenerId, std::move(tsfn));
  }
  conn->listenerKeys.emplace(listenerId, key);
  if (fanout->libvirtId >= 0) {
    deferred.Resolve(Napi::Number::New(env, listenerId));
  } else {
    fanout->waiters.emplace_back(listenerId, deferred);
  }
  if (fresh) Addon::Of(env).calls->Submit(std::make_unique<RegisterCall>(conn, std::move(dom), fanout, key));
  return promise;
}

Napi::Promise DeregisterDomainEvent(Napi::Env env, const std::shared_ptr<ConnState>& conn, int listenerId) {
  auto keyIt = conn->listenerKeys.find(listenerId);
  if (keyIt == conn->listenerKeys.end()) {
    return Rejected(env, UsageFailure(VIR_ERR_INVALID_ARG, "no event callback with ID " + std::to_string(listenerId) +
                                                               " on this connection (already deregistered?)"));
  }
  std::string key = keyIt->second;
  conn->listenerKeys.erase(keyIt);
  Fanout* fanout = conn->fanouts.at(key);
  fanout->Remove(listenerId);
  bool last;
  {
    std::lock_guard<std::mutex> lock(fanout->mutex);
    last = fanout->listeners.empty();
  }
  // Others still listen, or the registration is in flight (it drops itself when it lands).
  if (!last || fanout->libvirtId < 0) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(Napi::Number::New(env, 0));
    return d.Promise();
  }
  conn->fanouts.erase(key);
  return RunAsync(
      env, "virConnectDomainEventDeregisterAny",
      [ref = conn->ref.Share(), id = fanout->libvirtId, turn = Turn(conn->ops)]() mutable {
        turn.Wait();
        int r = virConnectDomainEventDeregisterAny(ref.get(), id);
        LibvirtFailure failure;
        if (r < 0) failure = CaptureLastError("virConnectDomainEventDeregisterAny");
        turn.Done();
        if (r < 0) throw failure;
        return r;
      },
      [](Napi::Env e, int& v) { return Napi::Number::New(e, v); });
}

std::vector<int> DetachAllEvents(ConnState& conn) {
  std::vector<int> ids;
  for (auto& [key, fanout] : conn.fanouts) {
    fanout->ReleaseAll();
    if (fanout->libvirtId >= 0) ids.push_back(fanout->libvirtId);
  }
  conn.fanouts.clear();
  conn.listenerKeys.clear();
  return ids;
}

}  // namespace strata
