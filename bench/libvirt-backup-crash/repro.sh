#!/bin/bash
# Reproduces libvirt 9.0's libvirtd segfault when a domain ends during a push backup with a
# checkpoint, WITHOUT touching the system libvirtd: as root, makes a throw-away user (useradd,
# home under /tmp, its own XDG_RUNTIME_DIR), runs scenario.sh as that user against the user's
# own qemu:///session daemon, and removes the user with every process it started.
#
#   bench/libvirt-backup-crash/repro.sh SCENARIO...
#   e.g. repro.sh running-destroy abort-destroy begin-kill begin-kill-persist begin-destroy
#
# What each scenario does: see scenario.sh. dmesg's segfault lines of the run are printed at the end.
set -eu
[ "$(id -u)" = 0 ] || { echo "run as root (it makes and removes a throw-away user)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
USER_NAME=strata-crash-$$
HOME_DIR=/tmp/$USER_NAME
useradd --create-home --home-dir "$HOME_DIR" --shell /bin/sh --user-group --comment 'Strata libvirt crash repro, removed after the run' "$USER_NAME"
U_ID=$(id -u "$USER_NAME")
cleanup() {
  pkill -KILL -u "$U_ID" 2>/dev/null || true
  for _ in $(seq 100); do pgrep -u "$U_ID" >/dev/null || break; sleep 0.1; done
  userdel -r "$USER_NAME" 2>/dev/null || true
  rm -rf "$HOME_DIR"
}
trap cleanup EXIT
chmod 700 "$HOME_DIR"
install -d -m 700 -o "$USER_NAME" -g "$USER_NAME" "$HOME_DIR/run"
install -m 755 "$HERE/scenario.sh" "$HOME_DIR/scenario.sh"
marker=$(awk '{print $1}' /proc/uptime)

for spec in "$@"; do
  # shellcheck disable=SC2086
  runuser -u "$USER_NAME" -- env -i HOME="$HOME_DIR" USER="$USER_NAME" LOGNAME="$USER_NAME" PATH=/usr/bin:/bin:/usr/sbin:/sbin \
    XDG_RUNTIME_DIR="$HOME_DIR/run" LANG=C.UTF-8 "$HOME_DIR/scenario.sh" $spec
done

echo "--- segfaults in dmesg since the start of this run (session daemon and QEMU of $USER_NAME):"
dmesg | awk -v m="$marker" -F'[][]' '{ if ($2 + 0 >= m + 0) print }' | grep -E 'segfault|traps' || echo "(none)"
echo "--- QEMU's own last words (its log per domain, under the user's ~/.cache/libvirt/qemu/log):"
grep -H -E 'Assertion|shutting down, reason=crashed' "$HOME_DIR"/.cache/libvirt/qemu/log/*.log 2>/dev/null | sed "s|^$HOME_DIR/.cache/libvirt/qemu/log/||" || echo "(none)"
log=$HOME_DIR/.cache/libvirt/libvirtd.log
if [ -f "$log" ]; then
  echo "--- session libvirtd.log, checkpoint/backup lines:"
  grep -E 'qemuCheckpoint|virDomainObjWait|Backup|backup' "$log" | tail -20 || true
fi
