#!/bin/bash
# One scenario against the calling user's own qemu:///session daemon (run by repro.sh as a
# throw-away user; never against qemu:///system). virsh only.
#
#   scenario.sh SCENARIO
#
# Scenarios (each: a domain with no OS on a qcow2 disk holding 256 MiB of data, a push backup
# with a checkpoint, then the domain ends):
#   running-destroy   transient; backup-begin returns, the job runs (throttled), then destroy
#   abort-destroy     transient; backup-begin returns, domjobabort, destroy at once
#   begin-destroy     transient; destroy (from a virsh already connected) the moment the target
#                     image has data, i.e. while backup-begin is still creating it (QEMU's
#                     blockdev-create job, which libvirt waits for) and has not returned
#   begin-kill        the same, but QEMU is killed (SIGKILL) instead: what a QEMU crash or a
#                     guest powering off does at that moment
#   ...-nochk         suffix: without a checkpoint
#   ...-sepchk        suffix: the checkpoint made first (checkpoint-create), backup-begin without one
#   ...-incr          suffix: an incremental backup from a checkpoint made before (with a new
#                     checkpoint as the other options say)
#   ...-persist       suffix: a persistent domain (define + start) instead of a transient one
#   begin-query       (with the suffixes too) transient; no end: domstats --block --backing in a loop while backup-begin
#                     creates the target (does QEMU survive the queries?)
#
# Prints one line: SCENARIO begin=<how backup-begin ended> daemon=<alive|CRASHED> ...
set -u
SCENARIO=$1
URI=qemu:///session
V="virsh -q -c $URI"
DIR=$HOME/repro
NAME=repro-$SCENARIO-$$
mkdir -p "$DIR"
DISK=$DIR/$NAME.qcow2
TARGET=$DIR/$NAME.backup.qcow2

# A crashed daemon may stay a zombie for a moment (init reaps orphans late here): not alive.
daemon_pid() {
  local pid
  for pid in $(pgrep -u "$(id -u)" -x libvirtd); do
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && echo "$pid" && return
  done
}

qemu-img create -q -f qcow2 "$DISK" 512M
qemu-io -f qcow2 -c "write -P 0xab 0 256M" "$DISK" >/dev/null

cat >"$DIR/$NAME.xml" <<EOF
<domain type='qemu'>
  <name>$NAME</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$DISK'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF
cat >"$DIR/$NAME.backup.xml" <<EOF
<domainbackup mode='push'>
  <disks>
    <disk name='vda' type='file'>
      <target file='$TARGET'/>
      <driver type='qcow2'/>
    </disk>
  </disks>
</domainbackup>
EOF
cat >"$DIR/$NAME.checkpoint.xml" <<EOF
<domaincheckpoint>
  <name>chk-$$</name>
  <disks><disk name='vda' checkpoint='bitmap'/></disks>
</domaincheckpoint>
EOF

CHK=(--checkpointxml "$DIR/$NAME.checkpoint.xml")
case $SCENARIO in
  *-nochk* | *-sepchk*) CHK=() ;;
esac
if [[ $SCENARIO == *-persist* ]]; then
  $V define "$DIR/$NAME.xml" >/dev/null && $V start "$NAME" >/dev/null
else
  $V create "$DIR/$NAME.xml" >/dev/null
fi
if [[ $SCENARIO == *-incr* ]]; then
  $V checkpoint-create-as "$NAME" --name "base-$$" --diskspec vda,checkpoint=bitmap >/dev/null
  sed -i "s|<domainbackup mode='push'>|<domainbackup mode='push'><incremental>base-$$</incremental>|" "$DIR/$NAME.backup.xml"
fi
[[ $SCENARIO == *-sepchk* ]] && $V checkpoint-create "$NAME" "$DIR/$NAME.checkpoint.xml" >/dev/null
before=$(daemon_pid)

begin_out=$DIR/$NAME.begin.out
extra=""
case $SCENARIO in
  running-destroy | abort-destroy)
    # One virsh for every step, so the limit is set the moment the backup has begun (before it
    # can finish) and the destroy follows the abort at once.
    {
      echo "backup-begin $NAME --backupxml $DIR/$NAME.backup.xml --checkpointxml $DIR/$NAME.checkpoint.xml"
      echo "blockjob $NAME vda --bandwidth 1"
      echo "domjobinfo $NAME"
      [ "$SCENARIO" = abort-destroy ] && echo "domjobabort $NAME"
      echo "destroy $NAME"
    } | $V >"$begin_out" 2>&1
    grep -q 'Backup started' "$begin_out"
    begin=$?
    extra="job-before-the-end=$(awk -F: '/^Operation/{gsub(/ /,"",$2);print $2}' "$begin_out") gone=$($V domstate "$NAME" >/dev/null 2>&1 && echo no || echo yes)"
    ;;
  begin-destroy* | begin-kill*)
    # A virsh already connected, so the destroy is sent at once, not after virsh starts.
    mkfifo "$DIR/$NAME.fifo"
    $V <"$DIR/$NAME.fifo" >/dev/null 2>&1 &
    exec 3>"$DIR/$NAME.fifo"
    $V backup-begin "$NAME" --backupxml "$DIR/$NAME.backup.xml" "${CHK[@]}" >"$begin_out" 2>&1 &
    bpid=$!
    # libvirt makes the target file empty, then has QEMU format it (blockdev-create): data in it
    # means backup-begin is inside that step.
    until [ -s "$TARGET" ] || ! kill -0 $bpid 2>/dev/null; do :; done
    if [[ $SCENARIO == begin-kill* ]]; then
      kill -KILL "$(cat "$XDG_RUNTIME_DIR/libvirt/qemu/run/$NAME.pid")"
    else
      echo "destroy $NAME" >&3
    fi
    extra="ended-while-begin-ran=$(kill -0 $bpid 2>/dev/null && echo yes || echo no)"
    wait $bpid
    begin=$?
    exec 3>&-
    wait
    ;;
  begin-query*)
    $V backup-begin "$NAME" --backupxml "$DIR/$NAME.backup.xml" "${CHK[@]}" >"$begin_out" 2>&1 &
    bpid=$!
    # One virsh reading commands from a pipe: a query every few milliseconds, not one per process start.
    while kill -0 $bpid 2>/dev/null; do echo "domstats $NAME --block --backing"; sleep 0.002; done | $V >"$DIR/$NAME.queries" 2>&1
    n=$(grep -c 'block.count' "$DIR/$NAME.queries")
    wait $bpid
    begin=$?
    extra="queries=$n state=$($V domstate "$NAME" --reason 2>&1 | tr ' ' _)"
    $V destroy "$NAME" >/dev/null 2>&1
    ;;
esac

# The daemon's end is what matters: a crashed session libvirtd is gone (virsh would start a new one).
sleep 1
after=$(daemon_pid)
if [ -n "$before" ] && [ "$before" = "$after" ]; then daemon=alive; else daemon="CRASHED(pid $before -> ${after:-none})"; fi
echo "$SCENARIO begin=$([ "$begin" = 0 ] && echo ok || echo "failed:$(tr '\n' ' ' <"$begin_out" | cut -c1-90)") daemon=$daemon $extra"
if [[ $SCENARIO == *-persist* ]]; then
  $V checkpoint-delete "$NAME" "chk-$$" --metadata >/dev/null 2>&1
  $V checkpoint-delete "$NAME" "base-$$" --metadata >/dev/null 2>&1
  $V undefine "$NAME" --checkpoints-metadata >/dev/null 2>&1
fi
rm -f "$DIR/$NAME".*
