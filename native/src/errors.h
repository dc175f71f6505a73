// libvirt errors: captured on the thread that made the call (libvirt's error state is
// thread-local), carried as plain data, and turned into a JS LibvirtError on the JS thread.
#pragma once

#include <napi.h>

#include <exception>
#include <string>

namespace strata {

struct LibvirtFailure : std::exception {
  int code = 0;
  int domain = 0;
  int level = 2;  // VIR_ERR_ERROR
  std::string message;
  std::string str1;
  std::string str2;
  std::string str3;
  int int1 = 0;
  int int2 = 0;
  const char* what() const noexcept override { return message.c_str(); }
};

// Copies libvirt's last error of this thread and resets it. `call` names the failed libvirt
// function, used when libvirt left no error behind.
LibvirtFailure CaptureLastError(const char* call);

// Throws the captured error of this thread as a LibvirtFailure.
[[noreturn]] void ThrowLastError(const char* call);

// A failure that is Strata's own (closed handle), with libvirt-like fields so JS sees one shape.
LibvirtFailure UsageFailure(int code, const std::string& message);

// Replaces libvirt's default handler, which prints every error to stderr.
void SilenceDefaultErrorPrinting();

Napi::Error ToJsError(Napi::Env env, const LibvirtFailure& failure);

}  // namespace strata
