#!/usr/bin/env bash
# Installs what Strata needs from the system's packages, then makes sure libvirt's daemons run:
# libvirt's client library and development files, libvirt's daemon with its QEMU driver, QEMU,
# the addon's build tools, Chromium for the tests, and OpenSSH's client (hosts over SSH) and server
# (the SSH tests start their own sshd; Debian's package also enables its ssh service, which no
# test uses). Debian/Ubuntu (apt-get) and Fedora (dnf).
# Idempotent: only missing packages are installed, and a daemon that answers is left alone.
# Node.js (>= 20.19) is not installed here: distributions ship older ones (see the README).
#
#   bash scripts/install-system-deps.sh            # as root, or a user allowed to sudo
#   bash scripts/install-system-deps.sh --no-daemons   # packages only
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

start_daemons=1
for arg in "$@"; do
  case "$arg" in
    --no-daemons) start_daemons=0 ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-system-deps: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  echo "install-system-deps: run this as root (or install sudo): it installs system packages" >&2
  exit 1
fi

# systemd as PID 1, not merely installed: containers and CI often have the one without the other.
has_systemd=0
[ -d /run/systemd/system ] && has_systemd=1

if command -v apt-get >/dev/null; then
  family=debian
  packages=(
    pkg-config g++ make python3
    libvirt-dev libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu
    qemu-system-x86 qemu-utils
    python3-libvirt
    openssh-client openssh-server
  )
  # Debian names its browser chromium; Ubuntu's is a snap behind chromium-browser. Asked of
  # os-release, not apt-cache, which knows nothing on a fresh machine before `apt-get update`.
  if grep -qsE '^ID=ubuntu$' /etc/os-release; then packages+=(chromium-browser); else packages+=(chromium); fi
  # The service units, the libvirt group and the default network; without systemd nothing
  # would start them, and .ci/start-daemons starts the daemons plainly instead.
  ((has_systemd)) && packages+=(libvirt-daemon-system)
  is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
  install() {
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  }
elif command -v dnf >/dev/null; then
  family=fedora
  packages=(
    pkgconf-pkg-config gcc-c++ make python3
    libvirt-devel libvirt-client libvirt-daemon-kvm
    qemu-kvm qemu-img
    python3-libvirt chromium
    openssh-clients openssh-server
  )
  is_installed() { rpm -q --whatprovides "$1" >/dev/null 2>&1; }
  install() { "${as_root[@]}" dnf install -y -q "$@"; }
else
  echo "install-system-deps: neither apt-get nor dnf found; install libvirt's development files, its daemon with the QEMU driver, QEMU, a C++ compiler, make, python3, pkg-config and Chromium by hand" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  is_installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing ($family): ${missing[*]}"
  install "${missing[@]}"
else
  echo "== every package is installed ($family): ${packages[*]}"
fi

((start_daemons)) || exit 0

if ((has_systemd)); then
  if [ "$family" = fedora ]; then
    # Fedora runs libvirt as one daemon per driver, started by their sockets.
    units=(virtqemud.socket virtlogd.socket virtstoraged.socket virtnetworkd.socket virtnodedevd.socket)
  else
    units=(libvirtd virtlogd)
  fi
  echo "== systemctl enable --now ${units[*]}"
  "${as_root[@]}" systemctl enable --now "${units[@]}"
else
  echo "== no systemd: starting the daemons with .ci/start-daemons"
  "${as_root[@]}" bash "$here/../.ci/start-daemons"
fi

if [ "$(id -u)" -ne 0 ] && ! id -nG | grep -qw libvirt; then
  echo "== note: to use qemu:///system without root, join the libvirt group: sudo usermod -aG libvirt $USER (then log in again)"
fi
