// The data Strata shows: hosts, domains, disks with their backing chains, and block jobs.
// Plain serialisable objects, shared by the main process and the renderer.

export type HostState = 'connecting' | 'connected' | 'lost' | 'retrying' | 'closed';

export interface HostInfo {
  id: string;
  uri: string;
  label: string;
  state: HostState;
  /** Why the host is in this state, e.g. libvirt's close reason; null when connected. */
  reason: string | null;
}

export interface DomainSummary {
  name: string;
  uuid: string;
  /** libvirt's VIR_DOMAIN_* state name, lower case without prefix: 'running', 'shutoff', … */
  state: string;
}

export type LayerType = 'file' | 'block' | 'network' | 'volume' | 'dir' | 'nvme' | 'vhostuser' | 'unknown';

/** One image of a backing chain. */
export interface Layer {
  /** libvirt's `index` attribute in the live XML (names the layer as `vda[N]`); null if absent. */
  index: number | null;
  type: LayerType;
  /** A file or block device path, or `protocol://host/name` for network sources. */
  path: string;
  /** The image format (qcow2, raw, …); null when libvirt does not say. */
  format: string | null;
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

export type JobType = 'pull' | 'copy' | 'commit' | 'active-commit' | 'backup' | 'unknown';

export type JobPhase = 'running' | 'ready' | 'pivoting' | 'aborting' | 'completed' | 'failed' | 'cancelled';

export const finishedPhases: readonly JobPhase[] = ['completed', 'failed', 'cancelled'];

export interface Job {
  /** Unique per job: host, domain, disk and start time. */
  id: string;
  hostId: string;
  domain: string;
  disk: string;
  type: JobType;
  phase: JobPhase;
  /** libvirt's progress counters: a ratio, not bytes (see docs/block-jobs.md). */
  cur: number;
  end: number;
  /** cur/end in 0..1, or null while libvirt cannot tell (end ≤ 1). */
  progress: number | null;
  /** The limit, 0 meaning unlimited. */
  bandwidthBytesPerSec: number;
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
}

export function isFinished(job: Pick<Job, 'phase'>): boolean {
  return finishedPhases.includes(job.phase);
}
