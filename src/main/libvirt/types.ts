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
