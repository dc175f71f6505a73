#include "events.h"

#include <libvirt/virterror.h>

#include <string>
#include <utility>
#include <vector>

#include "errors.h"
#include "event_fanout.h"
#include "typed_params.h"
#include "worker.h"

namespace strata {

namespace {

FieldValue Str(const char* s) { return s != nullptr ? FieldValue(std::string(s)) : FieldValue(nullptr); }

EventPayload Begin(virDomainPtr dom, int eventID) {
  EventPayload p;
  p.eventID = eventID;
  if (const char* name = virDomainGetName(dom)) p.domainName = name;
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(dom, uuid) == 0) p.domainUUID = uuid;
  return p;
}

void Deliver(void* opaque, const EventPayload& payload) { static_cast<Fanout*>(opaque)->Deliver(payload); }

void OnLifecycle(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  EventPayload p = Begin(dom, VIR_DOMAIN_EVENT_ID_LIFECYCLE);
  p.fields = {{"event", static_cast<long long>(event)}, {"detail", static_cast<long long>(detail)}};
  Deliver(opaque, std::move(p));
}

void OnBlockJob(virConnectPtr, virDomainPtr dom, const char* disk, int type, int status, void* opaque) {
  // BLOCK_JOB names the disk by the active layer's path, BLOCK_JOB_2 by its target ("vda"); both
  // share libvirt's callback signature, so the event ID travels in the registration.
  EventPayload p = Begin(dom, static_cast<Fanout*>(opaque)->eventID);
  p.fields = {{"disk", Str(disk)}, {"type", static_cast<long long>(type)}, {"status", static_cast<long long>(status)}};
  Deliver(opaque, std::move(p));
}

void OnDiskChange(virConnectPtr, virDomainPtr dom, const char* oldSrcPath, const char* newSrcPath,
                  const char* devAlias, int reason, void* opaque) {
  EventPayload p = Begin(dom, VIR_DOMAIN_EVENT_ID_DISK_CHANGE);
  p.fields = {{"oldSrcPath", Str(oldSrcPath)},
              {"newSrcPath", Str(newSrcPath)},
              {"devAlias", Str(devAlias)},
              {"reason", static_cast<long long>(reason)}};
  Deliver(opaque, std::move(p));
}

void OnDeviceRemoved(virConnectPtr, virDomainPtr dom, const char* devAlias, void* opaque) {
  EventPayload p = Begin(dom, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED);
  p.fields = {{"devAlias", Str(devAlias)}};
  Deliver(opaque, std::move(p));
}

void OnBlockThreshold(virConnectPtr, virDomainPtr dom, const char* dev, const char* path,
                      unsigned long long threshold, unsigned long long excess, void* opaque) {
  EventPayload p = Begin(dom, VIR_DOMAIN_EVENT_ID_BLOCK_THRESHOLD);
  p.fields = {{"dev", Str(dev)}, {"path", Str(path)}, {"threshold", threshold}, {"excess", excess}};
  Deliver(opaque, std::move(p));
}

void OnIoErrorReason(virConnectPtr, virDomainPtr dom, const char* srcPath, const char* devAlias, int action,
                     const char* reason, void* opaque) {
  EventPayload p = Begin(dom, VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON);
  p.fields = {{"srcPath", Str(srcPath)},
              {"devAlias", Str(devAlias)},
              {"action", static_cast<long long>(action)},
              {"reason", Str(reason)}};
  Deliver(opaque, std::move(p));
}

void OnJobCompleted(virConnectPtr, virDomainPtr dom, virTypedParameterPtr params, int nparams, void* opaque) {
  EventPayload p = Begin(dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED);
  p.fields = CopyTypedParams(params, nparams);
  Deliver(opaque, std::move(p));
}

struct BoundEvent {
  int id;
  virConnectDomainEventGenericCallback callback;
};

const std::vector<BoundEvent>& BoundEvents() {
  static const std::vector<BoundEvent> events = {
      {VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(OnLifecycle)},
      {VIR_DOMAIN_EVENT_ID_BLOCK_JOB, VIR_DOMAIN_EVENT_CALLBACK(OnBlockJob)},
      {VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, VIR_DOMAIN_EVENT_CALLBACK(OnBlockJob)},
      {VIR_DOMAIN_EVENT_ID_DISK_CHANGE, VIR_DOMAIN_EVENT_CALLBACK(OnDiskChange)},
      {VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, VIR_DOMAIN_EVENT_CALLBACK(OnDeviceRemoved)},
      {VIR_DOMAIN_EVENT_ID_BLOCK_THRESHOLD, VIR_DOMAIN_EVENT_CALLBACK(OnBlockThreshold)},
      {VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, VIR_DOMAIN_EVENT_CALLBACK(OnJobCompleted)},
      {VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON, VIR_DOMAIN_EVENT_CALLBACK(OnIoErrorReason)},
  };
  return events;
}

}  // namespace

virConnectDomainEventGenericCallback CallbackFor(int eventID) {
  for (const auto& e : BoundEvents()) {
    if (e.id == eventID) return e.callback;
  }
  return nullptr;
}

void CheckEventIsBound(Napi::Env env, int eventID) {
  if (CallbackFor(eventID) == nullptr) {
    throw Napi::RangeError::New(env, "event ID " + std::to_string(eventID) +
                                         " is not delivered by this binding; native/coverage.json lists the bound ones");
  }
}

}  // namespace strata
