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
/** JOB_COMPLETED carries the job's typed statistics as plain fields. */
export type JobCompletedEvent = DomainEventBase & Record<string, string | number | boolean | null>;

export interface DomainEventMap {
  0: LifecycleEvent;
  8: BlockJobEvent;
  9: DiskChangeEvent;
  15: DeviceRemovedEvent;
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
  getVersion(): Promise<number>;
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
  snapshotCreateXML(xmlDesc: string, flags?: number): Promise<DomainSnapshot>;
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

// BEGIN constants generated by native/gen-constants.mjs: do not edit by hand.
/** virConnectCloseReason */
export declare const VIR_CONNECT_CLOSE_REASON_CLIENT: 3;
/** virConnectCloseReason */
export declare const VIR_CONNECT_CLOSE_REASON_EOF: 1;
/** virConnectCloseReason */
export declare const VIR_CONNECT_CLOSE_REASON_ERROR: 0;
/** virConnectCloseReason */
export declare const VIR_CONNECT_CLOSE_REASON_KEEPALIVE: 2;
/** virConnectGetAllDomainStatsFlags */
export declare const VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE: 1;
/** virConnectGetAllDomainStatsFlags */
export declare const VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING: 1073741824;
/** virConnectGetAllDomainStatsFlags */
export declare const VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS: 2147483648;
/** virConnectGetAllDomainStatsFlags */
export declare const VIR_CONNECT_GET_ALL_DOMAINS_STATS_INACTIVE: 2;
/** virConnectGetAllDomainStatsFlags */
export declare const VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT: 536870912;
/** virConnectGetAllDomainStatsFlags */
export declare const VIR_CONNECT_GET_ALL_DOMAINS_STATS_OTHER: 128;
/** virConnectGetAllDomainStatsFlags */
export declare const VIR_CONNECT_GET_ALL_DOMAINS_STATS_PAUSED: 32;
/** virConnectGetAllDomainStatsFlags */
export declare const VIR_CONNECT_GET_ALL_DOMAINS_STATS_PERSISTENT: 4;
/** virConnectGetAllDomainStatsFlags */
export declare const VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING: 16;
/** virConnectGetAllDomainStatsFlags */
export declare const VIR_CONNECT_GET_ALL_DOMAINS_STATS_SHUTOFF: 64;
/** virConnectGetAllDomainStatsFlags */
export declare const VIR_CONNECT_GET_ALL_DOMAINS_STATS_TRANSIENT: 8;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_ACTIVE: 1;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_AUTOSTART: 1024;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT: 16384;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT: 4096;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_INACTIVE: 2;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE: 256;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_NO_AUTOSTART: 2048;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT: 32768;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_NO_MANAGEDSAVE: 512;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_NO_SNAPSHOT: 8192;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_OTHER: 128;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_PAUSED: 32;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_PERSISTENT: 4;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_RUNNING: 16;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_SHUTOFF: 64;
/** virConnectListAllDomainsFlags */
export declare const VIR_CONNECT_LIST_DOMAINS_TRANSIENT: 8;
/** virConnectFlags */
export declare const VIR_CONNECT_NO_ALIASES: 2;
/** virConnectFlags */
export declare const VIR_CONNECT_RO: 1;
/** virDomainBlockCommitFlags */
export declare const VIR_DOMAIN_BLOCK_COMMIT_ACTIVE: 4;
/** virDomainBlockCommitFlags */
export declare const VIR_DOMAIN_BLOCK_COMMIT_BANDWIDTH_BYTES: 16;
/** virDomainBlockCommitFlags */
export declare const VIR_DOMAIN_BLOCK_COMMIT_DELETE: 2;
/** virDomainBlockCommitFlags */
export declare const VIR_DOMAIN_BLOCK_COMMIT_RELATIVE: 8;
/** virDomainBlockCommitFlags */
export declare const VIR_DOMAIN_BLOCK_COMMIT_SHALLOW: 1;
/** virDomainBlockCopyFlags */
export declare const VIR_DOMAIN_BLOCK_COPY_REUSE_EXT: 2;
/** virDomainBlockCopyFlags */
export declare const VIR_DOMAIN_BLOCK_COPY_SHALLOW: 1;
/** virDomainBlockCopyFlags */
export declare const VIR_DOMAIN_BLOCK_COPY_SYNCHRONOUS_WRITES: 8;
/** virDomainBlockCopyFlags */
export declare const VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB: 4;
/** virDomainBlockJobAbortFlags */
export declare const VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC: 1;
/** virDomainBlockJobAbortFlags */
export declare const VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT: 2;
/** virConnectDomainEventBlockJobStatus */
export declare const VIR_DOMAIN_BLOCK_JOB_CANCELED: 2;
/** virConnectDomainEventBlockJobStatus */
export declare const VIR_DOMAIN_BLOCK_JOB_COMPLETED: 0;
/** virConnectDomainEventBlockJobStatus */
export declare const VIR_DOMAIN_BLOCK_JOB_FAILED: 1;
/** virDomainBlockJobInfoFlags */
export declare const VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES: 1;
/** virConnectDomainEventBlockJobStatus */
export declare const VIR_DOMAIN_BLOCK_JOB_READY: 3;
/** virDomainBlockJobSetSpeedFlags */
export declare const VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES: 1;
/** virDomainBlockJobType */
export declare const VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT: 4;
/** virDomainBlockJobType */
export declare const VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP: 5;
/** virDomainBlockJobType */
export declare const VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT: 3;
/** virDomainBlockJobType */
export declare const VIR_DOMAIN_BLOCK_JOB_TYPE_COPY: 2;
/** virDomainBlockJobType */
export declare const VIR_DOMAIN_BLOCK_JOB_TYPE_PULL: 1;
/** virDomainBlockJobType */
export declare const VIR_DOMAIN_BLOCK_JOB_TYPE_UNKNOWN: 0;
/** virDomainBlockPullFlags */
export declare const VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES: 64;
/** virDomainBlockRebaseFlags */
export declare const VIR_DOMAIN_BLOCK_REBASE_BANDWIDTH_BYTES: 64;
/** virDomainBlockRebaseFlags */
export declare const VIR_DOMAIN_BLOCK_REBASE_COPY: 8;
/** virDomainBlockRebaseFlags */
export declare const VIR_DOMAIN_BLOCK_REBASE_COPY_DEV: 32;
/** virDomainBlockRebaseFlags */
export declare const VIR_DOMAIN_BLOCK_REBASE_COPY_RAW: 4;
/** virDomainBlockRebaseFlags */
export declare const VIR_DOMAIN_BLOCK_REBASE_RELATIVE: 16;
/** virDomainBlockRebaseFlags */
export declare const VIR_DOMAIN_BLOCK_REBASE_REUSE_EXT: 2;
/** virDomainBlockRebaseFlags */
export declare const VIR_DOMAIN_BLOCK_REBASE_SHALLOW: 1;
/** virDomainState */
export declare const VIR_DOMAIN_BLOCKED: 2;
/** virDomainState */
export declare const VIR_DOMAIN_CRASHED: 6;
/** virDomainDestroyFlagsValues */
export declare const VIR_DOMAIN_DESTROY_DEFAULT: 0;
/** virDomainDestroyFlagsValues */
export declare const VIR_DOMAIN_DESTROY_GRACEFUL: 1;
/** virDomainDestroyFlagsValues */
export declare const VIR_DOMAIN_DESTROY_REMOVE_LOGS: 2;
/** virDomainEventType */
export declare const VIR_DOMAIN_EVENT_CRASHED: 8;
/** virDomainEventType */
export declare const VIR_DOMAIN_EVENT_DEFINED: 0;
/** virConnectDomainEventDiskChangeReason */
export declare const VIR_DOMAIN_EVENT_DISK_CHANGE_MISSING_ON_START: 0;
/** virConnectDomainEventDiskChangeReason */
export declare const VIR_DOMAIN_EVENT_DISK_DROP_MISSING_ON_START: 1;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE: 18;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE: 13;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_BLOCK_JOB: 8;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2: 16;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_BLOCK_THRESHOLD: 24;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_CONTROL_ERROR: 7;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_DEVICE_ADDED: 19;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED: 22;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED: 15;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_DISK_CHANGE: 9;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_GRAPHICS: 5;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_IO_ERROR: 4;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON: 6;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_JOB_COMPLETED: 21;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_LIFECYCLE: 0;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_MEMORY_DEVICE_SIZE_CHANGE: 26;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_MEMORY_FAILURE: 25;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_METADATA_CHANGE: 23;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION: 20;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_PMSUSPEND: 12;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_PMSUSPEND_DISK: 14;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_PMWAKEUP: 11;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_REBOOT: 1;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_RTC_CHANGE: 2;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_TRAY_CHANGE: 10;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_TUNABLE: 17;
/** virDomainEventID */
export declare const VIR_DOMAIN_EVENT_ID_WATCHDOG: 3;
/** virDomainEventType */
export declare const VIR_DOMAIN_EVENT_PMSUSPENDED: 7;
/** virDomainEventType */
export declare const VIR_DOMAIN_EVENT_RESUMED: 4;
/** virDomainEventType */
export declare const VIR_DOMAIN_EVENT_SHUTDOWN: 6;
/** virDomainEventType */
export declare const VIR_DOMAIN_EVENT_STARTED: 2;
/** virDomainEventType */
export declare const VIR_DOMAIN_EVENT_STOPPED: 5;
/** virDomainEventType */
export declare const VIR_DOMAIN_EVENT_SUSPENDED: 3;
/** virDomainEventType */
export declare const VIR_DOMAIN_EVENT_UNDEFINED: 1;
/** virDomainCreateFlags */
export declare const VIR_DOMAIN_NONE: 0;
/** virDomainState */
export declare const VIR_DOMAIN_NOSTATE: 0;
/** virDomainState */
export declare const VIR_DOMAIN_PAUSED: 3;
/** virDomainState */
export declare const VIR_DOMAIN_PMSUSPENDED: 7;
/** virDomainState */
export declare const VIR_DOMAIN_RUNNING: 1;
/** virDomainState */
export declare const VIR_DOMAIN_SHUTDOWN: 4;
/** virDomainState */
export declare const VIR_DOMAIN_SHUTOFF: 5;
/** virDomainSnapshotCreateFlags */
export declare const VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC: 128;
/** virDomainSnapshotCreateFlags */
export declare const VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT: 2;
/** virDomainSnapshotCreateFlags */
export declare const VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY: 16;
/** virDomainSnapshotCreateFlags */
export declare const VIR_DOMAIN_SNAPSHOT_CREATE_HALT: 8;
/** virDomainSnapshotCreateFlags */
export declare const VIR_DOMAIN_SNAPSHOT_CREATE_LIVE: 256;
/** virDomainSnapshotCreateFlags */
export declare const VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA: 4;
/** virDomainSnapshotCreateFlags */
export declare const VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE: 64;
/** virDomainSnapshotCreateFlags */
export declare const VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE: 1;
/** virDomainSnapshotCreateFlags */
export declare const VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT: 32;
/** virDomainSnapshotCreateFlags */
export declare const VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE: 512;
/** virDomainSnapshotDeleteFlags */
export declare const VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN: 1;
/** virDomainSnapshotDeleteFlags */
export declare const VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY: 4;
/** virDomainSnapshotDeleteFlags */
export declare const VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY: 2;
/** virDomainSnapshotXMLFlags */
export declare const VIR_DOMAIN_SNAPSHOT_XML_SECURE: 1;
/** virDomainCreateFlags */
export declare const VIR_DOMAIN_START_AUTODESTROY: 2;
/** virDomainCreateFlags */
export declare const VIR_DOMAIN_START_BYPASS_CACHE: 4;
/** virDomainCreateFlags */
export declare const VIR_DOMAIN_START_FORCE_BOOT: 8;
/** virDomainCreateFlags */
export declare const VIR_DOMAIN_START_PAUSED: 1;
/** virDomainCreateFlags */
export declare const VIR_DOMAIN_START_RESET_NVRAM: 32;
/** virDomainCreateFlags */
export declare const VIR_DOMAIN_START_VALIDATE: 16;
/** virDomainStatsTypes */
export declare const VIR_DOMAIN_STATS_BALLOON: 4;
/** virDomainStatsTypes */
export declare const VIR_DOMAIN_STATS_BLOCK: 32;
/** virDomainStatsTypes */
export declare const VIR_DOMAIN_STATS_CPU_TOTAL: 2;
/** virDomainStatsTypes */
export declare const VIR_DOMAIN_STATS_DIRTYRATE: 512;
/** virDomainStatsTypes */
export declare const VIR_DOMAIN_STATS_INTERFACE: 16;
/** virDomainStatsTypes */
export declare const VIR_DOMAIN_STATS_IOTHREAD: 128;
/** virDomainStatsTypes */
export declare const VIR_DOMAIN_STATS_MEMORY: 256;
/** virDomainStatsTypes */
export declare const VIR_DOMAIN_STATS_PERF: 64;
/** virDomainStatsTypes */
export declare const VIR_DOMAIN_STATS_STATE: 1;
/** virDomainStatsTypes */
export declare const VIR_DOMAIN_STATS_VCPU: 8;
/** virDomainStatsTypes */
export declare const VIR_DOMAIN_STATS_VM: 1024;
/** virDomainXMLFlags */
export declare const VIR_DOMAIN_XML_INACTIVE: 2;
/** virDomainXMLFlags */
export declare const VIR_DOMAIN_XML_MIGRATABLE: 8;
/** virDomainXMLFlags */
export declare const VIR_DOMAIN_XML_SECURE: 1;
/** virDomainXMLFlags */
export declare const VIR_DOMAIN_XML_UPDATE_CPU: 4;
/** virErrorNumber */
export declare const VIR_ERR_ACCESS_DENIED: 88;
/** virErrorNumber */
export declare const VIR_ERR_AGENT_UNRESPONSIVE: 86;
/** virErrorNumber */
export declare const VIR_ERR_AGENT_UNSYNCED: 97;
/** virErrorNumber */
export declare const VIR_ERR_ARGUMENT_UNSUPPORTED: 74;
/** virErrorNumber */
export declare const VIR_ERR_AUTH_CANCELLED: 79;
/** virErrorNumber */
export declare const VIR_ERR_AUTH_FAILED: 45;
/** virErrorNumber */
export declare const VIR_ERR_AUTH_UNAVAILABLE: 94;
/** virErrorNumber */
export declare const VIR_ERR_BLOCK_COPY_ACTIVE: 83;
/** virErrorNumber */
export declare const VIR_ERR_BUILD_FIREWALL: 63;
/** virErrorNumber */
export declare const VIR_ERR_CALL_FAILED: 26;
/** virErrorNumber */
export declare const VIR_ERR_CHECKPOINT_INCONSISTENT: 109;
/** virErrorNumber */
export declare const VIR_ERR_CONF_SYNTAX: 33;
/** virErrorNumber */
export declare const VIR_ERR_CONFIG_UNSUPPORTED: 67;
/** virErrorNumber */
export declare const VIR_ERR_CPU_INCOMPATIBLE: 91;
/** virErrorNumber */
export declare const VIR_ERR_DBUS_SERVICE: 89;
/** virErrorNumber */
export declare const VIR_ERR_DEVICE_MISSING: 99;
/** virErrorNumber */
export declare const VIR_ERR_DOM_EXIST: 28;
/** virErrorNumber */
export declare const VIR_ERR_DRIVER_FULL: 25;
/** virErrorLevel */
export declare const VIR_ERR_ERROR: 2;
/** virErrorNumber */
export declare const VIR_ERR_GET_FAILED: 10;
/** virErrorNumber */
export declare const VIR_ERR_GNUTLS_ERROR: 40;
/** virErrorNumber */
export declare const VIR_ERR_HOOK_SCRIPT_FAILED: 70;
/** virErrorNumber */
export declare const VIR_ERR_HTTP_ERROR: 12;
/** virErrorNumber */
export declare const VIR_ERR_INTERNAL_ERROR: 1;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_ARG: 8;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_CONN: 6;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_DOMAIN: 7;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_DOMAIN_CHECKPOINT: 102;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_DOMAIN_SNAPSHOT: 71;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_INTERFACE: 58;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_MAC: 44;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_NETWORK: 36;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_NETWORK_PORT: 105;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_NODE_DEVICE: 52;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_NWFILTER: 61;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_NWFILTER_BINDING: 100;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_SECRET: 65;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_STORAGE_POOL: 46;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_STORAGE_VOL: 47;
/** virErrorNumber */
export declare const VIR_ERR_INVALID_STREAM: 73;
/** virErrorNumber */
export declare const VIR_ERR_LIBSSH: 98;
/** virErrorNumber */
export declare const VIR_ERR_MIGRATE_FINISH_OK: 93;
/** virErrorNumber */
export declare const VIR_ERR_MIGRATE_PERSIST_FAILED: 69;
/** virErrorNumber */
export declare const VIR_ERR_MIGRATE_UNSAFE: 81;
/** virErrorNumber */
export declare const VIR_ERR_MULTIPLE_DOMAINS: 110;
/** virErrorNumber */
export declare const VIR_ERR_MULTIPLE_INTERFACES: 59;
/** virErrorNumber */
export declare const VIR_ERR_NETWORK_EXIST: 37;
/** virErrorNumber */
export declare const VIR_ERR_NETWORK_PORT_EXIST: 106;
/** virErrorNumber */
export declare const VIR_ERR_NO_CLIENT: 96;
/** virErrorNumber */
export declare const VIR_ERR_NO_CONNECT: 5;
/** virErrorNumber */
export declare const VIR_ERR_NO_DEVICE: 23;
/** virErrorNumber */
export declare const VIR_ERR_NO_DOMAIN: 42;
/** virErrorNumber */
export declare const VIR_ERR_NO_DOMAIN_BACKUP: 104;
/** virErrorNumber */
export declare const VIR_ERR_NO_DOMAIN_CHECKPOINT: 103;
/** virErrorNumber */
export declare const VIR_ERR_NO_DOMAIN_METADATA: 80;
/** virErrorNumber */
export declare const VIR_ERR_NO_DOMAIN_SNAPSHOT: 72;
/** virErrorNumber */
export declare const VIR_ERR_NO_HOSTNAME: 108;
/** virErrorNumber */
export declare const VIR_ERR_NO_INTERFACE: 57;
/** virErrorNumber */
export declare const VIR_ERR_NO_KERNEL: 17;
/** virErrorNumber */
export declare const VIR_ERR_NO_MEMORY: 2;
/** virErrorNumber */
export declare const VIR_ERR_NO_NAME: 21;
/** virErrorNumber */
export declare const VIR_ERR_NO_NETWORK: 43;
/** virErrorNumber */
export declare const VIR_ERR_NO_NETWORK_PORT: 107;
/** virErrorNumber */
export declare const VIR_ERR_NO_NODE_DEVICE: 53;
/** virErrorNumber */
export declare const VIR_ERR_NO_NWFILTER: 62;
/** virErrorNumber */
export declare const VIR_ERR_NO_NWFILTER_BINDING: 101;
/** virErrorNumber */
export declare const VIR_ERR_NO_OS: 22;
/** virErrorNumber */
export declare const VIR_ERR_NO_ROOT: 18;
/** virErrorNumber */
export declare const VIR_ERR_NO_SECRET: 66;
/** virErrorNumber */
export declare const VIR_ERR_NO_SECURITY_MODEL: 54;
/** virErrorNumber */
export declare const VIR_ERR_NO_SERVER: 95;
/** virErrorNumber */
export declare const VIR_ERR_NO_SOURCE: 19;
/** virErrorNumber */
export declare const VIR_ERR_NO_STORAGE_POOL: 49;
/** virErrorNumber */
export declare const VIR_ERR_NO_STORAGE_VOL: 50;
/** virErrorNumber */
export declare const VIR_ERR_NO_SUPPORT: 3;
/** virErrorNumber */
export declare const VIR_ERR_NO_TARGET: 20;
/** virErrorNumber */
export declare const VIR_ERR_NO_XEN: 14;
/** virErrorNumber */
export declare const VIR_ERR_NO_XENSTORE: 24;
/** virErrorLevel */
export declare const VIR_ERR_NONE: 0;
/** virErrorNumber */
export declare const VIR_ERR_OK: 0;
/** virErrorNumber */
export declare const VIR_ERR_OPEN_FAILED: 30;
/** virErrorNumber */
export declare const VIR_ERR_OPERATION_ABORTED: 78;
/** virErrorNumber */
export declare const VIR_ERR_OPERATION_DENIED: 29;
/** virErrorNumber */
export declare const VIR_ERR_OPERATION_FAILED: 9;
/** virErrorNumber */
export declare const VIR_ERR_OPERATION_INVALID: 55;
/** virErrorNumber */
export declare const VIR_ERR_OPERATION_TIMEOUT: 68;
/** virErrorNumber */
export declare const VIR_ERR_OPERATION_UNSUPPORTED: 84;
/** virErrorNumber */
export declare const VIR_ERR_OS_TYPE: 16;
/** virErrorNumber */
export declare const VIR_ERR_OVERFLOW: 82;
/** virErrorNumber */
export declare const VIR_ERR_PARSE_FAILED: 32;
/** virErrorNumber */
export declare const VIR_ERR_POST_FAILED: 11;
/** virErrorNumber */
export declare const VIR_ERR_READ_FAILED: 31;
/** virErrorNumber */
export declare const VIR_ERR_RESOURCE_BUSY: 87;
/** virErrorNumber */
export declare const VIR_ERR_RPC: 39;
/** virErrorNumber */
export declare const VIR_ERR_SEXPR_SERIAL: 13;
/** virErrorNumber */
export declare const VIR_ERR_SNAPSHOT_REVERT_RISKY: 77;
/** virErrorNumber */
export declare const VIR_ERR_SSH: 85;
/** virErrorNumber */
export declare const VIR_ERR_STORAGE_POOL_BUILT: 76;
/** virErrorNumber */
export declare const VIR_ERR_STORAGE_PROBE_FAILED: 75;
/** virErrorNumber */
export declare const VIR_ERR_STORAGE_VOL_EXIST: 90;
/** virErrorNumber */
export declare const VIR_ERR_SYSTEM_ERROR: 38;
/** virErrorNumber */
export declare const VIR_ERR_UNKNOWN_HOST: 4;
/** virErrorLevel */
export declare const VIR_ERR_WARNING: 1;
/** virErrorNumber */
export declare const VIR_ERR_WRITE_FAILED: 34;
/** virErrorNumber */
export declare const VIR_ERR_XEN_CALL: 15;
/** virErrorNumber */
export declare const VIR_ERR_XML_DETAIL: 35;
/** virErrorNumber */
export declare const VIR_ERR_XML_ERROR: 27;
/** virErrorNumber */
export declare const VIR_ERR_XML_INVALID_SCHEMA: 92;
/** virErrorDomain */
export declare const VIR_FROM_ACCESS: 55;
/** virErrorDomain */
export declare const VIR_FROM_ADMIN: 62;
/** virErrorDomain */
export declare const VIR_FROM_AUDIT: 36;
/** virErrorDomain */
export declare const VIR_FROM_AUTH: 46;
/** virErrorDomain */
export declare const VIR_FROM_BHYVE: 57;
/** virErrorDomain */
export declare const VIR_FROM_BPF: 71;
/** virErrorDomain */
export declare const VIR_FROM_CAPABILITIES: 44;
/** virErrorDomain */
export declare const VIR_FROM_CGROUP: 54;
/** virErrorDomain */
export declare const VIR_FROM_CH: 72;
/** virErrorDomain */
export declare const VIR_FROM_CONF: 9;
/** virErrorDomain */
export declare const VIR_FROM_CPU: 31;
/** virErrorDomain */
export declare const VIR_FROM_CRYPTO: 58;
/** virErrorDomain */
export declare const VIR_FROM_DBUS: 47;
/** virErrorDomain */
export declare const VIR_FROM_DEVICE: 49;
/** virErrorDomain */
export declare const VIR_FROM_DOM: 6;
/** virErrorDomain */
export declare const VIR_FROM_DOMAIN: 20;
/** virErrorDomain */
export declare const VIR_FROM_DOMAIN_CHECKPOINT: 69;
/** virErrorDomain */
export declare const VIR_FROM_DOMAIN_SNAPSHOT: 35;
/** virErrorDomain */
export declare const VIR_FROM_ESX: 28;
/** virErrorDomain */
export declare const VIR_FROM_EVENT: 40;
/** virErrorDomain */
export declare const VIR_FROM_FIREWALL: 59;
/** virErrorDomain */
export declare const VIR_FROM_FIREWALLD: 68;
/** virErrorDomain */
export declare const VIR_FROM_HOOK: 34;
/** virErrorDomain */
export declare const VIR_FROM_HYPERV: 43;
/** virErrorDomain */
export declare const VIR_FROM_IDENTITY: 53;
/** virErrorDomain */
export declare const VIR_FROM_INITCTL: 52;
/** virErrorDomain */
export declare const VIR_FROM_INTERFACE: 26;
/** virErrorDomain */
export declare const VIR_FROM_LIBSSH: 66;
/** virErrorDomain */
export declare const VIR_FROM_LIBXL: 41;
/** virErrorDomain */
export declare const VIR_FROM_LOCKING: 42;
/** virErrorDomain */
export declare const VIR_FROM_LOCKSPACE: 51;
/** virErrorDomain */
export declare const VIR_FROM_LOGGING: 63;
/** virErrorDomain */
export declare const VIR_FROM_LXC: 17;
/** virErrorDomain */
export declare const VIR_FROM_NET: 11;
/** virErrorDomain */
export declare const VIR_FROM_NETWORK: 19;
/** virErrorDomain */
export declare const VIR_FROM_NODEDEV: 22;
/** virErrorDomain */
export declare const VIR_FROM_NONE: 0;
/** virErrorDomain */
export declare const VIR_FROM_NWFILTER: 33;
/** virErrorDomain */
export declare const VIR_FROM_ONE: 27;
/** virErrorDomain */
export declare const VIR_FROM_OPENVZ: 14;
/** virErrorDomain */
export declare const VIR_FROM_PARALLELS: 48;
/** virErrorDomain */
export declare const VIR_FROM_PERF: 65;
/** virErrorDomain */
export declare const VIR_FROM_PHYP: 29;
/** virErrorDomain */
export declare const VIR_FROM_POLKIT: 60;
/** virErrorDomain */
export declare const VIR_FROM_PROXY: 8;
/** virErrorDomain */
export declare const VIR_FROM_QEMU: 10;
/** virErrorDomain */
export declare const VIR_FROM_REMOTE: 13;
/** virErrorDomain */
export declare const VIR_FROM_RESCTRL: 67;
/** virErrorDomain */
export declare const VIR_FROM_RPC: 7;
/** virErrorDomain */
export declare const VIR_FROM_SECRET: 30;
/** virErrorDomain */
export declare const VIR_FROM_SECURITY: 24;
/** virErrorDomain */
export declare const VIR_FROM_SEXPR: 4;
/** virErrorDomain */
export declare const VIR_FROM_SSH: 50;
/** virErrorDomain */
export declare const VIR_FROM_STATS_LINUX: 16;
/** virErrorDomain */
export declare const VIR_FROM_STORAGE: 18;
/** virErrorDomain */
export declare const VIR_FROM_STREAMS: 38;
/** virErrorDomain */
export declare const VIR_FROM_SYSINFO: 37;
/** virErrorDomain */
export declare const VIR_FROM_SYSTEMD: 56;
/** virErrorDomain */
export declare const VIR_FROM_TEST: 12;
/** virErrorDomain */
export declare const VIR_FROM_THREAD: 61;
/** virErrorDomain */
export declare const VIR_FROM_TPM: 70;
/** virErrorDomain */
export declare const VIR_FROM_UML: 21;
/** virErrorDomain */
export declare const VIR_FROM_URI: 45;
/** virErrorDomain */
export declare const VIR_FROM_VBOX: 25;
/** virErrorDomain */
export declare const VIR_FROM_VMWARE: 39;
/** virErrorDomain */
export declare const VIR_FROM_XEN: 1;
/** virErrorDomain */
export declare const VIR_FROM_XEN_INOTIFY: 23;
/** virErrorDomain */
export declare const VIR_FROM_XENAPI: 32;
/** virErrorDomain */
export declare const VIR_FROM_XEND: 2;
/** virErrorDomain */
export declare const VIR_FROM_XENSTORE: 3;
/** virErrorDomain */
export declare const VIR_FROM_XENXL: 64;
/** virErrorDomain */
export declare const VIR_FROM_XENXM: 15;
/** virErrorDomain */
export declare const VIR_FROM_XML: 5;
/** virErrorNumber */
export declare const VIR_WAR_NO_INTERFACE: 56;
/** virErrorNumber */
export declare const VIR_WAR_NO_NETWORK: 41;
/** virErrorNumber */
export declare const VIR_WAR_NO_NODE: 51;
/** virErrorNumber */
export declare const VIR_WAR_NO_NWFILTER: 60;
/** virErrorNumber */
export declare const VIR_WAR_NO_SECRET: 64;
/** virErrorNumber */
export declare const VIR_WAR_NO_STORAGE: 48;
export declare const VIR_DOMAIN_BLOCK_COPY_BANDWIDTH: 'bandwidth';
export declare const VIR_DOMAIN_BLOCK_COPY_BUF_SIZE: 'buf-size';
export declare const VIR_DOMAIN_BLOCK_COPY_GRANULARITY: 'granularity';
// END generated constants.
