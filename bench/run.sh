#!/usr/bin/env bash
# The benchmark suite (npm run bench): installs libvirt-python when it can, then runs
# bench/suite.mts, which waits for a quiet machine before each benchmark and writes
# bench/results/latest.json and bench/results/latest.md. See bench/README.md.
#
#   bash bench/run.sh                    # all of them
#   bash bench/run.sh --only scale,calls # some (names in bench/README.md)
#
# Needs a running libvirtd with QEMU (root or the libvirt group), qemu-img/qemu-io, `npm install`
# done (the addon built), Debian's python3-libvirt for /usr/bin/python3 (STRATA_BENCH_PYTHON picks
# another interpreter) and Chromium at /usr/bin/chromium (STRATA_CHROMIUM) for the browser ones.
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

cd "$repo"
exec node --import tsx "$here/suite.mts" --python "$python" "$@"
