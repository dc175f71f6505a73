// The data Strata shows: hosts, domains, disks with their backing chains, and block jobs.
// Plain serialisable objects, shared by the main process and the renderer.
import type { Preflight } from './health.ts';
import type { SpaceGuardNote, SpaceGuardSettings } from './space-guard.ts';
import type { SnapshotFate } from './layers.ts';
import type { AccessProblem } from './access.ts';

/** 'needs-user': the failure needs the user (see `access`); Strata waits for Retry or a watched change. */
export type HostState = 'connecting' | 'connected' | 'lost' | 'retrying' | 'needs-user' | 'closed';

export interface HostLimits {
  /** How many block jobs may run at once on the host; 0 for no limit. Others wait in a queue. */
  maxConcurrentJobs: number;
  /** Shared by the host's running jobs, re-divided as they start and end; 0 for no budget. */
  bandwidthBudgetBytesPerSec: number;
}

export interface HostInfo {
  id: string;
  uri: string;
  label: string;
  readOnly: boolean;
  /** Saved in the app's data folder (false for the default host of this run). */
  saved: boolean;
  state: HostState;
  /** Why the host is in this state, e.g. libvirt's close reason; null when connected. */
  reason: string | null;
  /** What the user can do about it (start libvirtd, join the libvirt group, …); null when connected. */
  hint: string | null;
  /** When the next connection attempt is due (epoch ms) while retrying; null otherwise. */
  retryAt: number | null;
  /** In state 'needs-user': the problem's kind, the fixes that fit, and what is watched; else null. */
  access: AccessProblem | null;
  limits: HostLimits;
  /** When running jobs are slowed or aborted for lack of space where they write (absent: the defaults). */
  spaceGuard?: SpaceGuardSettings;
}

/** libvirt's virDomainState names, lower case without the VIR_DOMAIN_ prefix. */
export const domainStates = ['nostate', 'running', 'blocked', 'paused', 'shutdown', 'shutoff', 'crashed', 'pmsuspended'] as const;
export type DomainState = (typeof domainStates)[number] | 'unknown';

export interface DomainSummary {
  name: string;
  uuid: string;
  state: DomainState;
}

export type LayerType = 'file' | 'block' | 'network' | 'volume' | 'dir' | 'nvme' | 'vhostuser' | 'unknown';

/** Sizes of one image in bytes, as libvirt reports them for a running domain. */
export interface LayerSizes {
  /** The guest-visible (virtual) size. */
  capacity: number;
  /**
   * libvirt's allocation: for a running qcow2 layer, the highest offset QEMU has written through
   * it (0 for layers it has not written since start); not the data the image holds.
   */
  allocation: number;
  /** The image file's size on the host. */
  physical: number;
}

/** One image of a backing chain. */
export interface Layer {
  /** libvirt's `index` attribute in the live XML (names the layer as `vda[N]`); null if absent. */
  index: number | null;
  type: LayerType;
  /** A file or block device path, or `protocol://host/name` for network sources. */
  path: string;
  /** The image format (qcow2, raw, …); null when libvirt does not say. */
  format: string | null;
  /** Null when libvirt has none to give (a stopped domain, a driver without stats). */
  sizes?: LayerSizes | null;
  /** The libvirt snapshot (external, with metadata) that made this layer; null when none did. */
  snapshot?: NamedSnapshot | null;
  /** Internal qcow2 snapshots inside this image (`qemu-img info`); absent when not read (remote hosts). */
  internalSnapshots?: InternalSnapshot[];
}

/** A libvirt snapshot's metadata, as `virsh snapshot-list` and virt-manager show it. */
export interface NamedSnapshot {
  name: string;
  /** Seconds since the epoch (libvirt's creationTime). */
  creationTime: number;
  description: string;
}

/** A snapshot stored inside a qcow2 image. */
export interface InternalSnapshot {
  id: string;
  name: string;
  /** Seconds since the epoch. */
  dateSec: number;
  /** Saved guest memory, 0 for a disk-only snapshot. */
  vmStateBytes: number;
}

export interface Disk {
  /** The guest target, e.g. 'vda'. */
  target: string;
  device: 'disk' | 'cdrom' | 'floppy' | 'lun';
  bus: string | null;
  readOnly: boolean;
  shareable: boolean;
  /** The backing chain, active layer first. Empty for a drive with no medium. */
  chain: Layer[];
}

export interface DomainDetail extends DomainSummary {
  disks: Disk[];
}

export type JobType = 'pull' | 'copy' | 'commit' | 'active-commit' | 'backup' | 'restore' | 'unknown';

/**
 * 'queued': waiting for room on the host; 'requested': libvirt is being asked to start it.
 * 'unknown': the job ended while Strata could not see it (the daemon was away) and its effect on
 * the chain does not tell whether it was cancelled or failed.
 */
export type JobPhase = 'queued' | 'requested' | 'running' | 'ready' | 'pivoting' | 'aborting' | 'completed' | 'failed' | 'cancelled' | 'unknown';

/** What a copy or an active commit does once it is ready: switch to the new image, or not. */
export type AfterReady = 'pivot' | 'keep' | 'wait';

export const finishedPhases: readonly JobPhase[] = ['completed', 'failed', 'cancelled', 'unknown'];

export interface Job {
  /** Unique per job: host, domain, disk and start time. */
  id: string;
  hostId: string;
  domain: string;
  disk: string;
  type: JobType;
  phase: JobPhase;
  /**
   * libvirt's progress counters: a ratio, not bytes. `end` is the disk's size for a pull and can
   * move either way during a mirror; cur=0,end=1 means libvirt cannot tell yet.
   */
  cur: number;
  end: number;
  /** cur/end in 0..1, or null while libvirt cannot tell (end ≤ 1). */
  progress: number | null;
  /** The limit in force, 0 meaning unlimited (the host's budget may set it below the request). */
  bandwidthBytesPerSec: number;
  /** The limit the user asked for, 0 meaning none. */
  requestedBandwidthBytesPerSec: number;
  /** For copies and active commits started by Strata: what happens at ready. */
  afterReady: AfterReady | null;
  /** Smoothed measured progress rate; null until two samples exist. */
  rateBytesPerSec: number | null;
  etaSeconds: number | null;
  /** Epoch milliseconds. */
  startedAt: number;
  updatedAt: number;
  endedAt: number | null;
  /** Who started it: Strata, or another client such as virsh. */
  origin: 'strata' | 'external';
  /** How it ended, in words, when it has ended. */
  outcome: string | null;
  /**
   * The image a copy created and left unused because the copy failed or was cancelled: Strata
   * offers to remove it. Null for every other job (a copy kept at ready is the copy asked for).
   */
  leftover: Leftover | null;
  /** What the space guard says about the room where the job writes, and what it did; absent when it does not watch the job. */
  spaceGuard?: SpaceGuardNote | null;
  /**
   * What runs the job: absent or 'libvirt' for a block job of a running domain's QEMU;
   * 'qemu-storage-daemon' for a job on a shut-off domain's images, run by Strata itself;
   * 'qemu-img' for a restore on a remote host, run there over SSH (its limit is fixed at its start).
   */
  engine?: JobEngine;
}

/** See Job.engine and ChainPreview.engine. */
export type JobEngine = 'libvirt' | 'qemu-storage-daemon' | 'qemu-img';

/**
 * What a `job` event tells, decided once by the engine (the one owner of a job's life), so the
 * window and the desktop notifications read a job's news alike:
 * 'appeared': its first event: Strata queued or requested it, or found it running (started
 *   elsewhere, or seen again after a reconnect);
 * 'phase': it moved to a phase that is neither ready nor an end (out of the queue, started,
 *   pivoting, aborting, or back where it was when libvirt refused);
 * 'ready': it is ready (a copy or active commit in sync), again after a refused or lost pivot;
 * 'progress': the same phase with new counters, rate or limit;
 * 'ended': it reached an end, told once per job;
 * 'amended': an ended job's record changed (its leftover removed or reused).
 */
export type JobTransition = 'appeared' | 'phase' | 'ready' | 'progress' | 'ended' | 'amended';

/** The `job` event: the job as it is now, and what just happened to it. */
export interface JobEvent extends Job {
  transition: JobTransition;
}

/** A file a Strata copy created that no disk took on; see Job.leftover. */
export interface Leftover {
  path: string;
  /** The copy did not reach ready: the file holds part of the disk, not a usable image of it. */
  partial: boolean;
  /** Its size on the host when the job ended; null where Strata cannot see the host's files. */
  bytes: number | null;
  /**
   * The file's device and inode when the job ended: Strata removes that file and no other (not
   * one put at the same path since). Null on a remote host, whose files Strata cannot remove.
   */
  fileId: string | null;
  /** 'left' while it is there; 'removed' once Strata removed it; 'reused' once a later copy wrote into it. */
  status: 'left' | 'removed' | 'reused';
}

export interface ChainPreview {
  /** One sentence: what the operation will do. */
  summary: string;
  before: Layer[];
  /** The chain once the operation has completed (after a pivot, where there is one). */
  after: Layer[];
  /** Layers no longer used by the disk afterwards (their files stay unless deleted). */
  unused: Layer[];
  /** Layers whose files the operation deletes. */
  deleted: Layer[];
  /** Image the operation creates, if any. */
  created: { path: string; format: string } | null;
  /** Confirmations the request must carry to run (see Confirmation). */
  needs: Confirmation[];
  warnings: string[];
  /**
   * Other domains on the same host whose chains use a layer this operation writes into or deletes
   * (a base shared by several guests): committing into it changes what they read.
   */
  sharedWith: SharedLayerUse[];
  /**
   * Bytes the job will copy, estimated from the layers' allocation (what QEMU has written through
   * each layer); null when the sizes are unknown (a stopped domain, a remote host without stats).
   */
  bytesToMove: number | null;
  /** Whether the job can succeed on this host (space, writability, the chain's health); absent for a snapshot. */
  preflight?: Preflight;
  /** What happens to each libvirt snapshot whose layers the operation removes from the chain. */
  namedSnapshots?: SnapshotFate[];
  /** What would run the job (see Job.engine); absent for a snapshot. */
  engine?: JobEngine;
}

export interface SharedLayerUse {
  domain: string;
  /** Paths of the layers that domain also uses, which the operation writes into or deletes. */
  paths: string[];
  /** 'written': the operation changes the layer's content; 'deleted': it removes the file. */
  effect: 'written' | 'deleted';
}

/**
 * What a request must say it accepts before Strata runs something that loses data:
 * 'drop-layers': a commit leaves layers out of the chain (their data moves down, the files stay
 *   but no longer form a usable image);
 * 'delete-files': the files of dropped layers are deleted;
 * 'reuse-existing-file': a copy writes into an existing file;
 * 'shared-layers': the operation writes into or deletes a layer other domains also use;
 * 'low-space': the estimated space the job needs is close to what is free where it writes.
 */
export type Confirmation = 'drop-layers' | 'delete-files' | 'reuse-existing-file' | 'shared-layers' | 'low-space';

export function isFinished(job: Pick<Job, 'phase'>): boolean {
  return finishedPhases.includes(job.phase);
}
