// Types of the libvirt addon. Names and argument order follow libvirt-python; anything that
// talks to libvirtd returns a Promise. Sizes and counters are JS numbers (exact below 2^53).

/** An error reported by libvirt (or refused by the binding before reaching it). */
export declare class LibvirtError extends Error {
  name: 'LibvirtError';
  /** libvirt's error code name, e.g. 'VIR_ERR_NO_DOMAIN'. */
  code: string;
  /** libvirt's error domain name, e.g. 'VIR_FROM_QEMU'. */
  domain: string;
  /** 'VIR_ERR_NONE' | 'VIR_ERR_WARNING' | 'VIR_ERR_ERROR'. */
  level: string;
  codeNumber: number;
  domainNumber: number;
  levelNumber: number;
  str1: string | null;
  str2: string | null;
  str3: string | null;
  int1: number;
  int2: number;
}

export interface DomainInfo {
  state: number;
  maxMemKiB: number;
  memoryKiB: number;
  nrVirtCpu: number;
  cpuTimeNs: number;
}

export interface BlockInfo {
  capacity: number;
  allocation: number;
  physical: number;
}

/** virDomainGetBlockJobInfo's result; an empty object when the disk has no job. */
export type BlockJobInfo =
  | Record<string, never>
  | {
      type: number;
      /** MiB/s, or bytes/s with VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES. */
      bandwidth: number;
      cur: number;
      end: number;
    };

/** Typed parameters of blockCopy, keyed like libvirt's VIR_DOMAIN_BLOCK_COPY_* strings. */
export interface BlockCopyParams {
  /** bytes/s, always. */
  bandwidth?: number | bigint;
  granularity?: number;
  'buf-size'?: number | bigint;
}

/** One of Domain.listAllSnapshots' results. */
export interface SnapshotDescription {
  name: string;
  /** virDomainSnapshotGetXMLDesc's answer, with the xmlFlags given to listAllSnapshots. */
  xml: string;
}

/** virDomainGetJobStats' result. */
export interface JobStats {
  /** A VIR_DOMAIN_JOB_* (virDomainJobType) value. */
  type: number;
  /** Typed parameters keyed like libvirt's VIR_DOMAIN_JOB_* strings ('data_total', 'operation', …). */
  stats: Record<string, string | number | boolean | null>;
}

/** One of Domain.listAllCheckpoints' results. */
export interface CheckpointDescription {
  name: string;
  /** null for a root checkpoint. */
  parent: string | null;
  /** virDomainCheckpointGetXMLDesc's answer, with the xmlFlags given to listAllCheckpoints. */
  xml: string;
}

export interface DomainEventBase {
  eventID: number;
  domainName: string;
  domainUUID: string;
}
export interface LifecycleEvent extends DomainEventBase {
  event: number;
  detail: number;
}
export interface BlockJobEvent extends DomainEventBase {
  /** The disk's target ("vda") for BLOCK_JOB_2, the active layer's path for BLOCK_JOB. */
  disk: string | null;
  type: number;
  status: number;
}
export interface DiskChangeEvent extends DomainEventBase {
  oldSrcPath: string | null;
  newSrcPath: string | null;
  devAlias: string | null;
  reason: number;
}
export interface DeviceRemovedEvent extends DomainEventBase {
  devAlias: string | null;
}
export interface BlockThresholdEvent extends DomainEventBase {
  dev: string | null;
  path: string | null;
  threshold: number;
  excess: number;
}
export interface IoErrorReasonEvent extends DomainEventBase {
  srcPath: string | null;
  devAlias: string | null;
  /** A VIR_DOMAIN_EVENT_IO_ERROR_* value. */
  action: number;
  /** QEMU's reason, e.g. 'enospc', 'eio'. */
  reason: string | null;
}
/** JOB_COMPLETED carries the job's typed statistics as plain fields. */
export type JobCompletedEvent = DomainEventBase & Record<string, string | number | boolean | null>;

export interface DomainEventMap {
  0: LifecycleEvent;
  8: BlockJobEvent;
  9: DiskChangeEvent;
  15: DeviceRemovedEvent;
  6: IoErrorReasonEvent;
  16: BlockJobEvent;
  21: JobCompletedEvent;
  24: BlockThresholdEvent;
}
export type BoundEventID = keyof DomainEventMap;

export interface CloseEvent {
  /** A VIR_CONNECT_CLOSE_REASON_* value. */
  reason: number;
}

export declare class Connection {
  private constructor();
  /** Deregisters this connection's callbacks, releases its domains, and closes it. */
  close(): Promise<number>;
  isAlive(): boolean;
  isClosed(): boolean;
  getURI(): Promise<string>;
  getHostname(): Promise<string>;
  getLibVersion(): Promise<number>;
  /** The hypervisor's version (major * 1,000,000 + minor * 1,000 + release). */
  getVersion(): Promise<number>;
  /** The driver's name: 'QEMU', 'TEST', … */
  getType(): Promise<string>;
  /** virConnectGetCapabilities: the host's capabilities XML. */
  getCapabilities(): Promise<string>;
  /**
   * virConnectGetDomainCapabilities: what a domain of this emulator, architecture, machine and
   * virtualization type ('kvm', 'qemu') can use; null lets libvirt choose the host's default.
   * Drivers other than QEMU's reject it with VIR_ERR_NO_SUPPORT.
   */
  getDomainCapabilities(
    emulatorbin: string | null,
    arch: string | null,
    machine: string | null,
    virttype: string | null,
    flags?: 0,
  ): Promise<string>;
  setKeepAlive(interval: number, count: number): Promise<number>;
  /** One close callback per connection; a second is refused until the first is unregistered. */
  registerCloseCallback(callback: (event: CloseEvent) => void): Promise<void>;
  /** Resolves true when a callback was registered and is now gone. */
  unregisterCloseCallback(): Promise<boolean>;
  listAllDomains(flags?: number): Promise<Domain[]>;
  /**
   * virConnectGetAllDomainStats: [domain, stats] pairs, stats keyed like libvirt's typed
   * parameters ('block.0.capacity', …). With VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING the block
   * stats cover every layer of every backing chain.
   */
  getAllDomainStats(stats?: number, flags?: number): Promise<[Domain, Record<string, string | number | boolean | null>][]>;
  lookupByName(name: string): Promise<Domain>;
  lookupByUUIDString(uuid: string): Promise<Domain>;
  createXML(xmlDesc: string, flags?: number): Promise<Domain>;
  /** virDomainDefineXMLFlags (virDomainDefineFlags): defines the domain, or replaces its persistent definition. */
  defineXML(xml: string, flags?: number): Promise<Domain>;
  /**
   * Resolves with an ID of this listener. Several listeners of one event and domain share one
   * libvirt registration. A listener does not keep the process alive (like an unref'd timer):
   * keep it running by other means (a server, a timer, an awaited promise) while waiting for events.
   */
  domainEventRegisterAny<K extends BoundEventID>(
    dom: Domain | null,
    eventID: K,
    callback: (event: DomainEventMap[K]) => void,
  ): Promise<number>;
  domainEventDeregisterAny(callbackID: number): Promise<number>;
}

export declare class Domain {
  private constructor();
  name(): string;
  UUIDString(): string;
  /** [state, reason] */
  state(): Promise<[number, number]>;
  info(): Promise<DomainInfo>;
  XMLDesc(flags?: number): Promise<string>;
  blockInfo(disk: string, flags?: 0): Promise<BlockInfo>;
  /** This domain's statistics (virDomainListGetStats): the same fields as getAllDomainStats. */
  stats(stats?: number, flags?: number): Promise<Record<string, string | number | boolean | null>>;
  destroy(flags?: number): Promise<number>;
  /** virDomainCreateWithFlags (virDomainCreateFlags): starts a defined domain. */
  createWithFlags(flags?: number): Promise<number>;
  /** `size` is KiB, or bytes with VIR_DOMAIN_BLOCK_RESIZE_BYTES. */
  blockResize(disk: string, size: number | bigint, flags?: number): Promise<number>;
  snapshotCreateXML(xmlDesc: string, flags?: number): Promise<DomainSnapshot>;
  /**
   * virDomainListAllSnapshots (flags: virDomainSnapshotListFlags), each with its name and
   * virDomainSnapshotGetXMLDesc (xmlFlags: virDomainSnapshotXMLFlags), read in one call. Unlike
   * libvirt-python it returns no handles: look one up with snapshotLookupByName. A snapshot
   * deleted meanwhile is left out.
   */
  listAllSnapshots(flags?: number, xmlFlags?: number): Promise<SnapshotDescription[]>;
  snapshotLookupByName(name: string, flags?: 0): Promise<DomainSnapshot>;
  blockPull(disk: string, bandwidth?: number | bigint, flags?: number): Promise<number>;
  blockRebase(disk: string, base: string | null, bandwidth?: number | bigint, flags?: number): Promise<number>;
  blockCommit(
    disk: string,
    base: string | null,
    top: string | null,
    bandwidth?: number | bigint,
    flags?: number,
  ): Promise<number>;
  blockCopy(disk: string, destxml: string, params?: BlockCopyParams | null, flags?: number): Promise<number>;
  blockJobInfo(disk: string, flags?: number): Promise<BlockJobInfo>;
  blockJobAbort(disk: string, flags?: number): Promise<number>;
  blockJobSetSpeed(disk: string, bandwidth: number | bigint, flags?: number): Promise<number>;
  setBlockThreshold(dev: string, threshold: number | bigint, flags?: 0): Promise<number>;
  suspend(): Promise<number>;
  resume(): Promise<number>;
  /**
   * virDomainBackupBegin (flags: virDomainBackupBeginFlags): starts a push or pull backup;
   * checkpointXml, when not null, records a checkpoint as the backup starts.
   */
  backupBegin(backupXml: string, checkpointXml: string | null, flags?: number): Promise<number>;
  /** The running backup job's <domainbackup> description. */
  backupGetXMLDesc(flags?: 0): Promise<string>;
  /** virDomainGetJobStats (flags: virDomainGetJobStatsFlags) for the domain-wide job. */
  jobStats(flags?: number): Promise<JobStats>;
  /** virDomainAbortJob: aborts the domain-wide job (a backup, a save, a migration). */
  abortJob(flags?: 0): Promise<number>;
  /**
   * virDomainCheckpointCreateXML (flags: virDomainCheckpointCreateFlags). Resolves with the
   * checkpoint's name: checkpoints are named, not handed out as objects.
   */
  checkpointCreateXML(xmlDesc: string, flags?: number): Promise<string>;
  /**
   * virDomainListAllCheckpoints (flags: virDomainCheckpointListFlags), each with its parent
   * (virDomainCheckpointGetParent) and description (virDomainCheckpointGetXMLDesc, xmlFlags:
   * virDomainCheckpointXMLFlags), read in one call. A checkpoint deleted meanwhile is left out.
   */
  listAllCheckpoints(flags?: number, xmlFlags?: number): Promise<CheckpointDescription[]>;
  /** virDomainCheckpointLookupByName, then virDomainCheckpointDelete (flags: virDomainCheckpointDeleteFlags). */
  checkpointDelete(checkpoint: string, flags?: number): Promise<number>;
}

export declare class DomainSnapshot {
  private constructor();
  getName(): string;
  getXMLDesc(flags?: number): Promise<string>;
  delete(flags?: number): Promise<number>;
}

export declare function open(uri?: string | null): Promise<Connection>;
export declare function openReadOnly(uri?: string | null): Promise<Connection>;

/** Every exported constant by its C name. */
export declare const constants: Readonly<Record<string, number | string>>;
/** The constants grouped by their libvirt enum type, e.g. enums.virDomainBlockJobType. */
export declare const enums: Readonly<Record<string, Readonly<Record<string, number>>>>;

// Every constant as its own export, e.g. VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT (generated).
export * from './constants.d.ts';
