// A file on this machine as QEMU's user meets it: owner, mode and whether that user may read and
// write it, the folders on the way it must be able to enter, and the mount that holds it (free
// space, read-only). Computed from the file's owner and mode bits for QEMU's uid, gid and the
// groups /etc/group gives it (as libvirt sets them when it starts QEMU), not by trying: Strata
// usually runs as root, for whom everything is allowed.
import { readFileSync, statfsSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import type { FileAccess, MountFacts, QemuUser } from '../../../shared/health.ts';

/** The groups `user` is in: its own, and those /etc/group lists it in. */
export function groupsOf(user: QemuUser, passwd = readOr('/etc/passwd'), group = readOr('/etc/group')): Set<number> {
  // QEMU of a session instance runs as this process's user, with the groups of its login.
  if (user.uid === process.getuid?.()) return new Set([user.gid, ...(process.getgroups?.() ?? [])]);
  const name = passwd.split('\n').map((l) => l.split(':')).find((f) => f[2] === String(user.uid))?.[0];
  const groups = new Set([user.gid]);
  if (name === undefined) return groups;
  for (const line of group.split('\n')) {
    const [, , gid, members] = line.split(':');
    if (gid !== undefined && members?.split(',').includes(name)) groups.add(Number(gid));
  }
  return groups;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    // No such file (a minimal container): only the primary group counts.
    return '';
  }
}

type Permission = 4 | 2 | 1;

/** Whether `user` (in `groups`) has `bit` (4 read, 2 write, 1 enter) on a file with this owner and mode. */
export function allows(s: Pick<Stats, 'uid' | 'gid' | 'mode'>, user: QemuUser, groups: ReadonlySet<number>, bit: Permission): boolean {
  // QEMU runs with its capabilities cleared, so not even uid 0 overrides the mode bits.
  if (s.uid === user.uid) return (s.mode & (bit << 6)) !== 0;
  if (groups.has(s.gid)) return (s.mode & (bit << 3)) !== 0;
  return (s.mode & bit) !== 0;
}

/** The first folder above `path` that `user` cannot enter; null when all can be. */
export function blockedFolder(path: string, user: QemuUser, groups: ReadonlySet<number>): string | null {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    let s: Stats;
    try {
      s = statSync(dir);
    } catch {
      return dir;
    }
    if (!allows(s, user, groups, 1)) return dir;
    if (dir === dirname(dir)) return null;
  }
}

/** Owner, mode and QEMU's access to an existing file; null when it cannot be read here. */
export function fileAccess(path: string, user: QemuUser | null): FileAccess | null {
  let s: Stats;
  try {
    s = statSync(path);
  } catch {
    return null;
  }
  const groups = user ? groupsOf(user) : null;
  return {
    ownerUid: s.uid,
    ownerGid: s.gid,
    mode: s.mode & 0o7777,
    qemuCanRead: user && groups ? allows(s, user, groups, 4) : null,
    qemuCanWrite: user && groups ? allows(s, user, groups, 2) : null,
    blockedFolder: user && groups ? blockedFolder(path, user, groups) : null,
  };
}

interface MountLine {
  mountPoint: string;
  readOnly: boolean;
}

// /proc/self/mountinfo escapes space, tab, newline and backslash in paths as octal.
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The mounts this process sees, from /proc/self/mountinfo: mount point and read-only flag. */
export function readMounts(text = readOr('/proc/self/mountinfo')): MountLine[] {
  return text
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f.length > 6)
    .map((f) => {
      const superOptions = f[f.indexOf('-') + 3] ?? '';
      const options = `${f[5] ?? ''},${superOptions}`.split(',');
      return { mountPoint: unescape(f[4] ?? '/'), readOnly: options.includes('ro') };
    });
}

/** The mount holding `path` (the longest mount point that is a prefix of it; the last mounted wins). */
export function mountOf(path: string, mounts: readonly MountLine[]): MountLine | null {
  let best: MountLine | null = null;
  for (const m of mounts) {
    const within = m.mountPoint === '/' || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`);
    if (within && (best === null || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/** Free space and read-only flag where `path` (a file or a file to be) lives; null when its folder is not there. */
export function mountFacts(path: string, mounts = readMounts()): MountFacts | null {
  let dir = path;
  try {
    if (!statSync(path).isDirectory()) dir = dirname(path);
  } catch {
    dir = dirname(path);
  }
  try {
    const fs = statfsSync(dir);
    const mount = mountOf(dir, mounts);
    return { mountPoint: mount?.mountPoint ?? '/', freeBytes: fs.bavail * fs.bsize, readOnly: mount?.readOnly ?? false };
  } catch {
    return null;
  }
}

/** Bytes a file takes on its file system (its allocated blocks); null when it cannot be read. */
export function allocatedBytes(path: string): number | null {
  try {
    return statSync(path).blocks * 512;
  } catch {
    return null;
  }
}

/** A file's identity and last change, to know a cached answer about it still holds. */
export function fileStamp(path: string): string | null {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.mtimeNs}:${s.size}`;
  } catch {
    return null;
  }
}

export const modeText = (mode: number): string => `0${(mode & 0o7777).toString(8)}`;
