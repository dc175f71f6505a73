// RAII owners of libvirt references. Each worker takes its own reference for the duration of its
// call, so a handle closed or collected on the JS thread is never freed under a running call.
//
// A LibvirtRef shares one libvirt reference among its copies and gives it back to libvirt when
// the last copy goes. Copies are what calls take: libvirt's own virDomainRef/virDomainFree format
// the domain's UUID for a debug message on every use, even with logging off, which on the JS
// thread cost several microseconds per call.
#pragma once

#include <libvirt/libvirt.h>

#include <memory>
#include <type_traits>
#include <utility>

namespace strata {

template <typename Ptr, int (*Ref)(Ptr), int (*Unref)(Ptr)>
class LibvirtRef {
 public:
  LibvirtRef() = default;
  // Takes over a reference libvirt handed out (a lookup's result).
  static LibvirtRef Adopt(Ptr p) { return LibvirtRef(p); }
  // Takes a new libvirt reference on a pointer someone else owns (a callback's argument).
  static LibvirtRef Share(Ptr p) {
    if (p != nullptr) Ref(p);
    return LibvirtRef(p);
  }
  LibvirtRef(const LibvirtRef&) = delete;
  LibvirtRef& operator=(const LibvirtRef&) = delete;
  LibvirtRef(LibvirtRef&&) noexcept = default;
  LibvirtRef& operator=(LibvirtRef&&) noexcept = default;

  Ptr get() const { return p_.get(); }
  explicit operator bool() const { return p_ != nullptr; }
  // Another owner of the same libvirt reference.
  LibvirtRef Share() const { return LibvirtRef(p_); }
  void Reset() { p_.reset(); }

 private:
  using Object = std::remove_pointer_t<Ptr>;
  explicit LibvirtRef(Ptr p) {
    if (p != nullptr) p_ = std::shared_ptr<Object>(p, [](Ptr q) { Unref(q); });
  }
  explicit LibvirtRef(std::shared_ptr<Object> p) : p_(std::move(p)) {}
  std::shared_ptr<Object> p_;
};

using ConnRef = LibvirtRef<virConnectPtr, virConnectRef, virConnectClose>;
using DomRef = LibvirtRef<virDomainPtr, virDomainRef, virDomainFree>;
using SnapshotRef = LibvirtRef<virDomainSnapshotPtr, virDomainSnapshotRef, virDomainSnapshotFree>;
using CheckpointRef = LibvirtRef<virDomainCheckpointPtr, virDomainCheckpointRef, virDomainCheckpointFree>;

}  // namespace strata
