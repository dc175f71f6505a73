// What Strata can tell about a chain's health before a job runs: each layer as qemu-img and the
// file system see it (the chain check), what an operation needs where it writes (the preflight),
// and what the host's libvirt and QEMU can do at all (capabilities).

/** 'error': a job touching this fails or loses data; 'warning': it may; 'info': worth knowing. */
export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  severity: Severity;
  /** A stable name for the kind of finding, e.g. 'corrupt', 'backing-format-missing'. */
  code: string;
  /** One plain sentence: what is wrong or worth knowing. */
  message: string;
  /** What to do about it; null when nothing needs doing. */
  action: string | null;
}

/** The host's security driver, from libvirt's capabilities `<secmodel><model>`. */
export type SecurityDriver = 'apparmor' | 'selinux' | 'dac' | 'none' | 'unknown';

/** The user and group QEMU runs as, from libvirt's DAC base label (`+64055:+994`). */
export interface QemuUser {
  uid: number;
  gid: number;
  /** Where libvirt said so, e.g. "libvirt's capabilities (baselabel for kvm)". */
  source: string;
}

export interface FileAccess {
  ownerUid: number;
  ownerGid: number;
  /** Permission bits, e.g. 0o644. */
  mode: number;
  /** Whether QEMU's user may read and write the file as it is now (owner, group, mode). */
  qemuCanRead: boolean | null;
  qemuCanWrite: boolean | null;
  /** A folder on the way QEMU's user cannot enter; null when every one is open to it. */
  blockedFolder: string | null;
}

export interface MountFacts {
  /** The mount point that holds the file. */
  mountPoint: string;
  freeBytes: number;
  readOnly: boolean;
}

export interface LayerCheck {
  /** libvirt's index (the N of vda[N]); null where libvirt names none. */
  index: number | null;
  path: string;
  format: string | null;
  virtualBytes: number | null;
  /** Bytes the file takes on its file system (qemu-img's actual-size). */
  allocatedBytes: number | null;
  backingFile: string | null;
  /** The backing file's format recorded in this image; null with a backing file means QEMU must probe it. */
  backingFormat: string | null;
  snapshots: string[];
  bitmaps: { name: string; flags: string[] }[];
  /** From qemu-img check; null where it was not run (raw images, remote hosts, not readable). */
  corruptions: number | null;
  leaks: number | null;
  access: FileAccess | null;
  mount: MountFacts | null;
  findings: Finding[];
}

export interface ChainCheck {
  hostId: string;
  domain: string;
  disk: string;
  /** Whether the domain was running: qemu-img then reads with -U and cannot vouch for metadata QEMU holds in memory. */
  live: boolean;
  /** The images are on this machine (false for a remote host: only libvirt's view is reported). */
  local: boolean;
  security: SecurityDriver;
  qemuUser: QemuUser | null;
  layers: LayerCheck[];
  /** Findings about the whole chain or host (security driver, a live check's limits). */
  findings: Finding[];
  /** Epoch ms, and how long the check took. */
  checkedAt: number;
  tookMs: number;
}

/** The checks that decide whether a job can succeed, in an operation's preview. */
export interface Preflight {
  /** 'refused': it would certainly fail, job.start refuses it; 'at-risk': it needs 'low-space' confirmed. */
  verdict: 'ok' | 'at-risk' | 'refused';
  /** The file the job writes into (a commit's base, a pull's active layer, a copy's destination). */
  target: string | null;
  /** Bytes the target's file system must take, and how that was estimated; null when not known. */
  neededBytes: number | null;
  estimate: string | null;
  freeBytes: number | null;
  /** Room kept free on top of the estimate before Strata calls the space enough. */
  marginBytes: number | null;
  findings: Finding[];
}

/** What the host's libvirt and QEMU can do, read once per connection. */
export interface HostCapabilities {
  libvirtVersion: string | null;
  qemuVersion: string | null;
  security: SecurityDriver;
  qemuUser: QemuUser | null;
  /** Operations this host cannot do, with the reason (absent: it can). */
  unsupported: Partial<Record<'pull' | 'commit' | 'copy' | 'snapshot' | 'backup', string>>;
  /** Null when everything was read; otherwise why some of it could not be. */
  problem: string | null;
}
