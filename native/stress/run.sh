#!/usr/bin/env bash
# Stress run of the libvirt addon under AddressSanitizer + LeakSanitizer.
#
#   bash native/stress/run.sh                               # from a checkout, after `npm install`
#   STRATA_STRESS_SCALE=0.1 bash native/stress/run.sh       # a quick try (a tenth of the calls)
#   STRATA_STRESS_ONLY=pull,misuse bash native/stress/run.sh   # some phases (a wrong name lists them)
#   STRATA_STRESS_SKIP=closecb-test bash native/stress/run.sh
#
# Needs: a running libvirtd with QEMU (`virsh -c qemu:///system version`; on a machine without
# systemd, `bash .ci/start-daemons`), root or the libvirt group, g++ with libasan (Debian: part of
# g++), make, pkg-config, libvirt-dev, qemu-img/qemu-io. About a minute for the sanitized build
# (cached), then 40-90 s for ~21,000 calls. Other people's tests that restart libvirtd during the
# run make it fail (it says so): run it again.
#
# What it does:
# 1. Builds a sanitized copy of the addon (STRATA_SANITIZE=address, see native/binding.gyp) from a
#    copy of native/binding.gyp and native/src in a cache directory, never in native/build. The
#    build is reused while binding.gyp, src/ and node are unchanged ($STRATA_STRESS_BUILD_DIR,
#    default ${TMPDIR:-/tmp}/strata-stress-asan/<hash of the sources>; rebuilt when they change).
# 2. Runs native/stress/stress.mts (see its header for the phases) with libasan (and libtirpc,
#    see below) preloaded into the uninstrumented node, the sanitized .node passed in
#    STRATA_NATIVE_ADDON, leak detection at exit, and native/stress/lsan.supp, which hides only
#    allocations that are not the addon's to free (each entry says why).
#
# Exit status: 0 when every call did what it should and ASan/LSan reported nothing; 1 when the
# stress program saw something unexpected (listed as UNEXPECTED); 86 when AddressSanitizer or
# LeakSanitizer reported an error (the report is on stderr and in the log named at the end).
#
# Environment: STRATA_STRESS_URI (default qemu:///system), STRATA_STRESS_SCALE (default 1),
# STRATA_STRESS_ONLY / STRATA_STRESS_SKIP (phases), STRATA_STRESS_BUILD_DIR (see above),
# STRATA_STRESS_LOG (default the build dir's stress.log).
#
# Its first runs found three addon bugs, none an invalid access, all fixed since: a close-callback
# registration leaked on drivers without close callbacks (test:///); an unregisterCloseCallback
# racing an in-flight registerCloseCallback left libvirt's registration behind; a Connection
# collected with an event listener registered kept the process alive.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
native="$repo/native"

for tool in g++ make pkg-config node; do
  command -v "$tool" >/dev/null || { echo "strata stress: $tool is not installed" >&2; exit 2; }
done
[ -d "$repo/node_modules/node-gyp" ] && [ -d "$repo/node_modules/node-addon-api" ] && [ -d "$repo/node_modules/tsx" ] ||
  { echo "strata stress: run npm install first (node-gyp, node-addon-api and tsx are needed)" >&2; exit 2; }
libasan=$(g++ -print-file-name=libasan.so)
[ -e "$libasan" ] || { echo "strata stress: g++ has no libasan.so ($libasan)" >&2; exit 2; }
libasan=$(readlink -f "$libasan")

# 1. The sanitized build, cached by the hash of what it is built from.
hash=$( (cat "$native/binding.gyp"; cd "$native" && find src -type f | LC_ALL=C sort | xargs sha256sum; node --version) | sha256sum | cut -c1-16)
build_dir=${STRATA_STRESS_BUILD_DIR:-${TMPDIR:-/tmp}/strata-stress-asan/$hash}
addon="$build_dir/build/Release/strata_libvirt.node"
if [ ! -f "$addon" ] || [ "$(cat "$build_dir/sources.sha" 2>/dev/null)" != "$hash" ]; then
  echo "== building the addon with -fsanitize=address in $build_dir"
  rm -rf "$build_dir"
  mkdir -p "$build_dir"
  cp "$native/binding.gyp" "$build_dir/"
  cp -r "$native/src" "$build_dir/src"
  gyp_args=(rebuild --jobs=max)
  # Like native/build.mjs: the running node's own headers when they are installed beside it.
  prefix=$(cd "$(dirname "$(command -v node)")/.." && pwd)
  if [ -z "${npm_config_nodedir:-}" ] && [ -f "$prefix/include/node/node_api.h" ]; then gyp_args+=("--nodedir=$prefix"); fi
  # binding.gyp runs `node -p "require('node-addon-api').include_dir"` in the copy: NODE_PATH
  # lets that find the repository's node_modules.
  if ! (cd "$build_dir" && NODE_PATH="$repo/node_modules" STRATA_SANITIZE=address \
      node "$repo/node_modules/node-gyp/bin/node-gyp.js" "${gyp_args[@]}" >build.log 2>&1); then
    tail -40 "$build_dir/build.log" >&2
    echo "strata stress: the sanitized build failed; full log: $build_dir/build.log" >&2
    rm -f "$addon"
    exit 2
  fi
  grep -q -- '-fsanitize=address' "$build_dir/build/strata_libvirt.target.mk" ||
    { echo "strata stress: the build did not pick up STRATA_SANITIZE=address" >&2; exit 2; }
  echo "$hash" >"$build_dir/sources.sha"
else
  echo "== reusing the sanitized build in $build_dir"
fi

# 2. The run.
log=${STRATA_STRESS_LOG:-$build_dir/stress.log}
# detect_leaks: LeakSanitizer at exit. halt_on_error: stop at the first invalid access.
# exitcode=86: tell sanitizer reports apart from the program's own failures.
# protect_shadow_gap=0: V8 reserves address space that ASan's protected gap would otherwise
# collide with on some kernels. detect_odr_violation=0: node itself is not instrumented, and the
# addon's inline node-addon-api symbols are not ODR-relevant here.
# fast_unwind_on_malloc=0: full stacks for leaks through uninstrumented frames (node's own).
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:exitcode=86:protect_shadow_gap=0:detect_odr_violation=0:fast_unwind_on_malloc=0:print_suppressions=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=1${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# libasan intercepts xdrmem_create and friends, binding them when it starts. On Debian 12 those
# functions are not in glibc but in libtirpc, which libvirt loads only later (with the addon), so
# the interceptor would call a null pointer on the first remote call (virNetMessageEncodeHeader).
# Preloading libtirpc right after libasan lets the interceptors find the real functions.
preload="$libasan"
tirpc=$(ldd "$addon" | awk '/libtirpc/ && !found { print $3; found = 1 }')
if [ -n "$tirpc" ]; then preload="$preload $tirpc"; fi
echo "== stress run (log: $log)"
daemon_pid() { cat /run/libvirtd.pid 2>/dev/null || pgrep -o -x libvirtd || true; }
pid_before=$(daemon_pid)
set +e
# stress.mts removes LD_PRELOAD from its environment once started, so the tools it runs (qemu-img,
# qemu-io) run without libasan (tsx's esbuild, started earlier, is a static binary: unaffected).
(cd "$repo" && STRATA_NATIVE_ADDON="$addon" LD_PRELOAD="$preload" \
  node --import tsx --expose-gc "$here/stress.mts") 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
pid_after=$(daemon_pid)
if [ "$pid_before" != "$pid_after" ]; then
  # Other people's tests restart libvirtd; connections then drop mid-run, calls fail with
  # "client socket is closed", and libvirt's own client may keep a saved error (see lsan.supp).
  echo "strata stress: NOTE: libvirtd was restarted during the run (pid $pid_before -> $pid_after);" \
    "failures from dropped connections are not the addon's: run again on a quiet daemon" >&2
fi

if grep -q -E '^==[0-9]+==ERROR: (AddressSanitizer|LeakSanitizer)' "$log"; then
  echo "strata stress: SANITIZER REPORT (exit $status); see above or $log" >&2
  exit 86
fi
if [ "$status" -ne 0 ]; then
  echo "strata stress: FAILED (exit $status); log: $log" >&2
  exit "$status"
fi
echo "strata stress: passed; AddressSanitizer and LeakSanitizer reported nothing (log: $log)"
