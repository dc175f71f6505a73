// The facade's own vocabulary: libvirt's numbers turned into names, bandwidth always bytes/s.
import type { DomainState, JobType } from '../../shared/model.ts';

export interface RawDomain {
  name: string;
  uuid: string;
  state: DomainState;
  active: boolean;
}

export interface RawBlockJob {
  type: JobType;
  bandwidthBytesPerSec: number;
  cur: number;
  end: number;
}

export type BlockJobStatus = 'completed' | 'failed' | 'cancelled' | 'ready';

export interface BlockJobNotice {
  domain: string;
  disk: string;
  type: JobType;
  status: BlockJobStatus;
}

export type CloseReason = 'error' | 'eof' | 'keepalive' | 'client' | 'unknown';

export interface LayerStats {
  target: string;
  /** libvirt's backingIndex, the N of vda[N]. */
  index: number | null;
  path: string | null;
  capacity: number;
  allocation: number;
  physical: number;
}

/** Versions as 'major.minor.release'. */
export interface HostVersions {
  /** The daemon's libvirt on a remote connection, else the library's. */
  libvirt: string;
  /** The driver's name: 'QEMU', 'TEST', … */
  hypervisorName: string;
  /** null when the driver reports none. */
  hypervisor: string | null;
}

/** A libvirt snapshot with metadata: its name and virDomainSnapshotGetXMLDesc. */
export interface SnapshotDescription {
  name: string;
  xml: string;
}

/** VIR_DOMAIN_EVENT_ID_BLOCK_THRESHOLD: a layer's allocation passed the threshold set on it. */
export interface BlockThresholdNotice {
  domain: string;
  /** The disk target ('vda') or a layer of it ('vda[1]'), as the threshold was set. */
  dev: string;
  path: string | null;
  thresholdBytes: number;
  /** How far past the threshold the write went. */
  excessBytes: number;
}

export type IoErrorAction = 'none' | 'pause' | 'report' | 'reset' | 'poweroff' | 'unknown';

/** VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON. */
export interface IoErrorNotice {
  domain: string;
  srcPath: string | null;
  devAlias: string | null;
  action: IoErrorAction;
  /** QEMU's reason: 'enospc', 'eio', … */
  reason: string;
}

export type DomainJobType = 'none' | 'bounded' | 'unbounded' | 'completed' | 'failed' | 'cancelled';

/** virDomainGetJobStats, or the statistics a JOB_COMPLETED event carries. */
export interface DomainJobStats {
  type: DomainJobType;
  /** VIR_DOMAIN_JOB_OPERATION_* in lower case, '_' as '-': 'backup', 'save', 'snapshot-delete', …; 'unknown' when absent. */
  operation: string;
  /** data_* when libvirt reports it, else disk_* (a backup reports only disk_*). */
  dataTotalBytes: number | null;
  dataProcessedBytes: number | null;
  dataRemainingBytes: number | null;
  timeElapsedMs: number | null;
  errorMessage: string | null;
  /** Every typed parameter as libvirt named it ('data_total', 'success', …). */
  raw: Record<string, number | string | boolean>;
}

/** VIR_DOMAIN_EVENT_ID_JOB_COMPLETED. */
export interface JobCompletedNotice {
  domain: string;
  stats: DomainJobStats;
}

/** A checkpoint: its name, its parent's (null for a root) and virDomainCheckpointGetXMLDesc. */
export interface CheckpointDescription {
  name: string;
  parent: string | null;
  xml: string;
}

/** One domain's record of virConnectGetAllDomainStats, keyed as libvirt names the fields. */
export interface DomainStatsRecord {
  name: string;
  stats: Record<string, number | string | boolean>;
}
