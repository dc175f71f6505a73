// RAII owners of libvirt references. Each worker takes its own reference for the duration of its
// call, so a handle closed or collected on the JS thread is never freed under a running call.
#pragma once

#include <libvirt/libvirt.h>

#include <utility>

namespace strata {

template <typename Ptr, int (*Ref)(Ptr), int (*Unref)(Ptr)>
class LibvirtRef {
 public:
  LibvirtRef() = default;
  static LibvirtRef Adopt(Ptr p) { return LibvirtRef(p); }
  static LibvirtRef Share(Ptr p) {
    if (p != nullptr) Ref(p);
    return LibvirtRef(p);
  }
  LibvirtRef(const LibvirtRef&) = delete;
  LibvirtRef& operator=(const LibvirtRef&) = delete;
  LibvirtRef(LibvirtRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  LibvirtRef& operator=(LibvirtRef&& o) noexcept {
    if (this != &o) {
      Reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  ~LibvirtRef() { Reset(); }

  Ptr get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }
  LibvirtRef Share() const { return Share(p_); }
  void Reset() {
    if (p_ != nullptr) Unref(std::exchange(p_, nullptr));
  }

 private:
  explicit LibvirtRef(Ptr p) : p_(p) {}
  Ptr p_ = nullptr;
};

using ConnRef = LibvirtRef<virConnectPtr, virConnectRef, virConnectClose>;
using DomRef = LibvirtRef<virDomainPtr, virDomainRef, virDomainFree>;
using SnapshotRef = LibvirtRef<virDomainSnapshotPtr, virDomainSnapshotRef, virDomainSnapshotFree>;

}  // namespace strata
