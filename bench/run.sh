#!/usr/bin/env bash
# The benchmarks: Strata's addon against libvirt-python on the same libvirtd.
#   bench/blockjobinfo.mts: blockJobInfo calls per second on the same throttled pulls
#   bench/event-latency.mts: how much later block-job events reach JS than libvirt-python's callback
#
#   bash bench/run.sh                          # both (~3 minutes)
#   bash bench/run.sh --rounds 5 --seconds 5   # other options go to bench/blockjobinfo.mts
#   bash bench/run.sh --json results.json      # also write every sample (the latencies to
#                                              # results-latency.json)
#   bash bench/run.sh --only strataSeq,latencyIdle   # a subset: blockjobinfo.mts's modes and
#                                              # latencyIdle / latencyBusy (event-latency.mts's phases)
#
# Needs a running libvirtd with QEMU (root or the libvirt group), qemu-img/qemu-io, `npm install`
# done (the addon built), and Debian's python3-libvirt for /usr/bin/python3 (installed here with
# apt-get when missing and run as root; STRATA_BENCH_PYTHON picks another interpreter).
#
# Run it on a quiet machine: it waits (up to STRATA_BENCH_WAIT seconds, default 300) for the
# 1-minute load to drop below 1 and for other processes' `node --test` runs to end, because
# (a) with 2 cores other guests and tests change the numbers a lot, and (b) Strata's own engine,
# when a test runs it against the same libvirtd, re-applies its bandwidth budget to every job it
# discovers, also the benchmark's, and sets their limit to 0 (unlimited): the pulls then end
# within a second and the run is reported INVALID. A run disturbed that way, or by a libvirtd
# restart, is tried again (STRATA_BENCH_ATTEMPTS, default 3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
python=${STRATA_BENCH_PYTHON:-/usr/bin/python3}

if ! "$python" -c 'import libvirt' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ "$python" = /usr/bin/python3 ]; then
    echo "== installing python3-libvirt (libvirt-python for $python)"
    apt-get install -y --no-install-recommends python3-libvirt >/dev/null ||
      { apt-get update -qq && apt-get install -y --no-install-recommends python3-libvirt >/dev/null; }
  else
    echo "bench: $python cannot import libvirt: apt-get install python3-libvirt (or set STRATA_BENCH_PYTHON)" >&2
    exit 2
  fi
fi

# Waits (up to STRATA_BENCH_WAIT seconds) for load < 1 and no other `node --test` process.
wait_quiet() {
  local wait_max=${STRATA_BENCH_WAIT:-300} waited=0 load others
  while :; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    others=$(pgrep -f -- 'node .*--test' | wc -l || true)
    if awk -v l="$load" 'BEGIN { exit !(l < 1.0) }' && [ "$others" -eq 0 ]; then return 0; fi
    if [ "$waited" -ge "$wait_max" ]; then
      echo "bench: still busy after ${wait_max} s (load $load, $others test processes): running anyway; the numbers are suspect" >&2
      return 0
    fi
    [ "$waited" -eq 0 ] && echo "== waiting for a quiet machine (load $load, $others test processes running)"
    sleep 10
    waited=$((waited + 10))
  done
}

only=""
json=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only=${2-}; shift 2 ;;
    --only=*) only=${1#--only=}; shift ;;
    --json) json=${2-}; args+=("$1" "$json"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
info_modes=()
latency_phases=()
if [ -n "$only" ]; then
  IFS=, read -ra wanted <<<"$only"
  for mode in "${wanted[@]}"; do
    case "$mode" in
      latencyIdle) latency_phases+=(idle) ;;
      latencyBusy) latency_phases+=(busy) ;;
      *) info_modes+=("$mode") ;;
    esac
  done
else
  latency_phases=(idle busy)
fi

# Runs a benchmark, again when something outside disturbed it (exit status 75: libvirtd
# restarted, or the jobs were sped up and ended).
attempts=${STRATA_BENCH_ATTEMPTS:-3}
with_retries() {
  local attempt status
  for attempt in $(seq 1 "$attempts"); do
    wait_quiet
    set +e
    "$@"
    status=$?
    set -e
    [ "$status" -ne 75 ] && return "$status"
    echo "== attempt $attempt of $attempts was disturbed from outside; trying again" >&2
  done
  return 75
}

cd "$repo"
if [ -z "$only" ] || [ "${#info_modes[@]}" -gt 0 ]; then
  only_args=()
  [ -n "$only" ] && only_args=(--only "$(IFS=,; echo "${info_modes[*]}")")
  with_retries node --import tsx "$here/blockjobinfo.mts" --python "$python" "${args[@]}" "${only_args[@]}"
fi
if [ "${#latency_phases[@]}" -gt 0 ]; then
  latency_args=(--only "$(IFS=,; echo "${latency_phases[*]}")")
  [ -n "$json" ] && latency_args+=(--json "${json%.json}-latency.json")
  with_retries node --import tsx "$here/event-latency.mts" --python "$python" "${latency_args[@]}"
fi
