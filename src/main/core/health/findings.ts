// Turns what qemu-img, the file system and libvirt report about a layer into findings: a severity,
// one plain sentence, and what to do. Pure functions over facts, so every wording is tested
// without images.
import type { FileAccess, Finding, MountFacts, QemuUser, SecurityDriver } from '../../../shared/health.ts';
import type { CheckResult, ImageInfo } from './qemu-img.ts';
import { modeText } from './file-access.ts';
import { confinementNote, likelyDenial } from './security-model.ts';

export const finding = (severity: Finding['severity'], code: string, message: string, action: string | null = null): Finding => ({ severity, code, message, action });

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
export function bytesText(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(n >= 10 * GiB ? 0 : 1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(n >= 10 * MiB ? 0 : 1)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
}

export interface LayerFacts {
  path: string;
  /** The name to use in sentences: vda[2] /path, or the path. */
  name: string;
  /** Position in the chain: 0 is the active layer. */
  position: number;
  chainLength: number;
  /** The next layer down as libvirt reports it; null at the base. */
  libvirtBacking: string | null;
  live: boolean;
  info: ImageInfo | null;
  infoError: string | null;
  check: CheckResult | null;
  checkError: string | null;
  access: FileAccess | null;
  mount: MountFacts | null;
  qemuUser: QemuUser | null;
  security: SecurityDriver;
}

const user = (u: QemuUser): string => `QEMU's user (${u.uid}:${u.gid})`;

/** What the image itself says: qemu-img info and check. */
export function imageFindings(f: LayerFacts): Finding[] {
  const out: Finding[] = [];
  const offline = f.live ? 'Shut the domain down, copy the file aside, then' : 'Copy the file aside, then';
  if (f.infoError !== null) {
    out.push(finding('error', 'unreadable', `qemu-img cannot read ${f.name}: ${f.infoError}.`, 'Check that the file exists and is an image; a job on this chain would fail.'));
    return out;
  }
  const info = f.info;
  if (!info) return out;
  if (info.corruptFlag) {
    out.push(finding('error', 'corrupt-flag', `QEMU marked ${f.name} corrupt and will not write to it.`, `${offline} run qemu-img check -r all on it.`));
  }
  if (f.check && f.check.corruptions > 0) {
    const live = f.live ? ' (read beside the running QEMU, which may hold metadata not yet written: check again with the domain shut down before repairing)' : '';
    out.push(finding('error', 'corrupt', `qemu-img check found ${f.check.corruptions} corruption${f.check.corruptions === 1 ? '' : 's'} in ${f.name}${live}.`, `Run no job on this chain. ${offline} run qemu-img check -r all on it.`));
  }
  if (f.check && f.check.leaks > 0) {
    out.push(finding('info', 'leaks', `${f.name} has ${f.check.leaks} leaked cluster${f.check.leaks === 1 ? '' : 's'}: space is wasted, no data is at risk.`, 'With the domain shut down, qemu-img check -r leaks reclaims it.'));
  }
  if (f.check && f.check.checkErrors > 0) {
    out.push(finding('warning', 'check-errors', `qemu-img check could not read all of ${f.name} (${f.check.checkErrors} errors): the storage may be failing.`, 'Look at the host\'s kernel log for I/O errors before running a job.'));
  }
  if (f.checkError !== null) out.push(finding('warning', 'check-failed', `qemu-img check did not finish on ${f.name}: ${f.checkError}.`, null));
  if (info.dirtyFlag) {
    out.push(finding('warning', 'dirty', `${f.name} was not closed cleanly (lazy refcounts): its refcounts may be wrong until repaired.`, 'With the domain shut down, qemu-img check -r all repairs it.'));
  }
  if (info.backingFile !== null && info.backingFormat === null) {
    out.push(
      finding(
        'warning',
        'backing-format-missing',
        `${f.name} names its backing file ${info.backingFile} without its format, so QEMU has to guess it: a raw file that looks like another format is read wrongly, and libvirt refuses to start a domain that needs the guess.`,
        `Record it (domain shut down): qemu-img rebase -u -b ${info.backingFile} -F <format of the backing file> ${f.path}.`,
      ),
    );
  }
  if (f.libvirtBacking !== null && info.backingFile !== null && info.backingFile !== f.libvirtBacking) {
    out.push(finding('warning', 'backing-differs', `${f.name} names ${info.backingFile} as its backing file, while libvirt uses ${f.libvirtBacking}.`, "Make the image and the domain's XML agree before running a job."));
  }
  if (f.libvirtBacking === null && f.position === f.chainLength - 1 && info.backingFile !== null) {
    out.push(finding('warning', 'backing-unknown-to-libvirt', `${f.name} has a backing file (${info.backingFile}) that libvirt does not show in the chain.`, "Check the domain's XML: the chain libvirt shows ends above the image's own backing file."));
  }
  if (info.snapshots.length > 0 && f.chainLength > 1) {
    out.push(
      finding(
        'warning',
        'internal-snapshots',
        `${f.name} holds ${info.snapshots.length} internal snapshot${info.snapshots.length === 1 ? '' : 's'} (${info.snapshots.join(', ')}) in a chain of external layers: libvirt cannot revert to them while the disk has backing layers, and a pull or commit leaves them describing older data.`,
        'Keep them only if you know how they were made; otherwise delete them with qemu-img snapshot -d while the domain is shut down.',
      ),
    );
  }
  for (const bitmap of info.bitmaps) {
    // The active layer of a running domain holds its bitmaps open: 'in-use' is normal there.
    const inUseNormally = f.live && f.position === 0;
    if (bitmap.flags.includes('in-use') && !inUseNormally) {
      out.push(finding('warning', 'bitmap-inconsistent', `Bitmap ${bitmap.name} in ${f.name} is marked in use while no QEMU holds it open: it is inconsistent, and an incremental backup from it would be wrong.`, `Remove it (domain shut down): qemu-img bitmap --remove ${f.path} ${bitmap.name}; the next backup is then a full one.`));
    }
  }
  return out;
}

/** Who may read and write the file, where it lives, and what the security driver adds. */
export function fileFindings(f: LayerFacts): Finding[] {
  const out: Finding[] = [];
  const a = f.access;
  if (!a) {
    if (f.infoError === null) out.push(finding('warning', 'not-visible', `Strata cannot see ${f.path} on this machine.`, null));
    return out;
  }
  const owner = `owner ${a.ownerUid}:${a.ownerGid}, mode ${modeText(a.mode)}`;
  if (a.blockedFolder !== null && f.qemuUser) {
    out.push(finding('error', 'folder-blocked', `${user(f.qemuUser)} cannot enter ${a.blockedFolder}, the folder ${f.path} is in: QEMU cannot open it.`, `Let it in (chmod o+x ${a.blockedFolder}) or move the image to a folder QEMU can reach, such as /var/lib/libvirt/images.`));
  }
  if (f.qemuUser && a.qemuCanRead === false) {
    out.push(finding('warning', 'not-readable', `${user(f.qemuUser)} cannot read ${f.name} (${owner}); libvirt gives the file to QEMU when it starts the domain, if dynamic ownership is on.`, `If QEMU is refused, give it the file: chown ${f.qemuUser.uid}:${f.qemuUser.gid} ${f.path}.`));
  }
  if (f.qemuUser && a.qemuCanWrite === false && f.position > 0) {
    if ((a.mode & 0o200) === 0) {
      out.push(finding('warning', 'not-writable', `${user(f.qemuUser)} cannot write ${f.name} (${owner}), and handing it over keeps it read-only: a commit into this layer fails with "Permission denied" (${likelyDenial(f.security)}).`, `Before committing into it: chmod u+w ${f.path}.`));
    } else {
      out.push(finding('info', 'handed-over', `${f.name} is not writable by ${user(f.qemuUser)} now (${owner}); libvirt hands it over when a job writes into it.`, null));
    }
  }
  if (f.mount?.readOnly) {
    out.push(finding('warning', 'read-only-mount', `${f.name} is on the read-only mount ${f.mount.mountPoint}: no job can write into it.`, 'Remount it read-write before a commit into this layer.'));
  }
  return out;
}

/** Findings about the whole check: the host's confinement, a live image's limits, a remote host. */
export function chainFindings(options: { live: boolean; local: boolean; hostLabel: string; security: SecurityDriver; qemuUser: QemuUser | null }): Finding[] {
  const out: Finding[] = [];
  if (!options.local) {
    out.push(finding('info', 'remote', `The images are on ${options.hostLabel}, not on this machine: Strata cannot read them, so this shows only what libvirt reports (formats and sizes).`, 'Run qemu-img check on that host for the images\' health.'));
  }
  if (options.local && options.live) {
    out.push(
      finding(
        'info',
        'live',
        'The domain runs, so qemu-img read its images beside QEMU (-U): it cannot see metadata QEMU still holds in memory, so a live image can show leaks or errors that are not there, and a clean result does not prove the image is clean.',
        'For a certain answer, check again with the domain shut down.',
      ),
    );
  }
  const note = confinementNote(options.security);
  if (note) out.push(finding(options.security === 'apparmor' ? 'warning' : 'info', `security-${options.security}`, `${note}.`, options.security === 'apparmor' ? "If a commit is refused, add the base to the domain's AppArmor profile (/etc/apparmor.d/libvirt/libvirt-<uuid>.files) or commit with the domain shut down." : null));
  if (options.local && options.qemuUser === null) out.push(finding('info', 'qemu-user-unknown', "libvirt does not say which user QEMU runs as here, so the files' permissions were not judged.", null));
  return out;
}
