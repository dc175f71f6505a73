// A typed facade over one libvirt connection: names instead of numbers, bandwidth in bytes/s,
// domain handles cached by name. It knows nothing of hosts, jobs or the UI.
import { domainStates, type DomainState, type JobType } from '../../shared/model.ts';
import { libvirtCode } from './errors.ts';
import { native, type NativeConnection, type NativeDomain } from './native.ts';
import type {
  BlockJobNotice,
  BlockJobStatus,
  BlockThresholdNotice,
  CheckpointDescription,
  CloseReason,
  DomainJobStats,
  DomainJobType,
  DomainStatsRecord,
  HostVersions,
  IoErrorAction,
  IoErrorNotice,
  JobCompletedNotice,
  LayerStats,
  RawBlockJob,
  RawDomain,
  SnapshotDescription,
} from './types.ts';
import { escapeXml } from './xml.ts';

const jobTypes: Record<number, JobType> = {
  [native.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL]: 'pull',
  [native.VIR_DOMAIN_BLOCK_JOB_TYPE_COPY]: 'copy',
  [native.VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT]: 'commit',
  [native.VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT]: 'active-commit',
  [native.VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP]: 'backup',
};

const jobStatuses: Record<number, BlockJobStatus> = {
  [native.VIR_DOMAIN_BLOCK_JOB_COMPLETED]: 'completed',
  [native.VIR_DOMAIN_BLOCK_JOB_FAILED]: 'failed',
  [native.VIR_DOMAIN_BLOCK_JOB_CANCELED]: 'cancelled',
  [native.VIR_DOMAIN_BLOCK_JOB_READY]: 'ready',
};

const closeReasons: Record<number, CloseReason> = {
  [native.VIR_CONNECT_CLOSE_REASON_ERROR]: 'error',
  [native.VIR_CONNECT_CLOSE_REASON_EOF]: 'eof',
  [native.VIR_CONNECT_CLOSE_REASON_KEEPALIVE]: 'keepalive',
  [native.VIR_CONNECT_CLOSE_REASON_CLIENT]: 'client',
};

const ioErrorActions: Record<number, IoErrorAction> = {
  [native.VIR_DOMAIN_EVENT_IO_ERROR_NONE]: 'none',
  [native.VIR_DOMAIN_EVENT_IO_ERROR_PAUSE]: 'pause',
  [native.VIR_DOMAIN_EVENT_IO_ERROR_REPORT]: 'report',
};

const domainJobTypes: Record<number, DomainJobType> = {
  [native.VIR_DOMAIN_JOB_NONE]: 'none',
  [native.VIR_DOMAIN_JOB_BOUNDED]: 'bounded',
  [native.VIR_DOMAIN_JOB_UNBOUNDED]: 'unbounded',
  [native.VIR_DOMAIN_JOB_COMPLETED]: 'completed',
  [native.VIR_DOMAIN_JOB_FAILED]: 'failed',
  [native.VIR_DOMAIN_JOB_CANCELLED]: 'cancelled',
};

const jobOperations = new Map<number, string>(
  Object.entries(native.enums.virDomainJobOperation ?? {}).map(([name, value]) => [
    value,
    name.replace(/^VIR_DOMAIN_JOB_OPERATION_/, '').toLowerCase().replaceAll('_', '-'),
  ]),
);

type TypedFields = Record<string, string | number | boolean | null>;

/** Drops the nulls (string parameters libvirt left unset) so every value is a real one. */
function present(fields: TypedFields, skip: ReadonlySet<string> = new Set()): Record<string, number | string | boolean> {
  const out: Record<string, number | string | boolean> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== null && !skip.has(k)) out[k] = v;
  return out;
}

function jobStatsOf(type: DomainJobType, raw: Record<string, number | string | boolean>): DomainJobStats {
  const num = (key: string): number | null => (typeof raw[key] === 'number' ? raw[key] : null);
  // A backup reports only disk_*: its data is disk data. Jobs that move memory too (migration,
  // save) report data_*, the sum of both.
  const data = (dataKey: string, diskKey: string): number | null => num(dataKey) ?? num(diskKey);
  const op = num(native.VIR_DOMAIN_JOB_OPERATION);
  const err = raw[native.VIR_DOMAIN_JOB_ERRMSG];
  return {
    type,
    operation: op === null ? 'unknown' : (jobOperations.get(op) ?? 'unknown'),
    dataTotalBytes: data(native.VIR_DOMAIN_JOB_DATA_TOTAL, native.VIR_DOMAIN_JOB_DISK_TOTAL),
    dataProcessedBytes: data(native.VIR_DOMAIN_JOB_DATA_PROCESSED, native.VIR_DOMAIN_JOB_DISK_PROCESSED),
    dataRemainingBytes: data(native.VIR_DOMAIN_JOB_DATA_REMAINING, native.VIR_DOMAIN_JOB_DISK_REMAINING),
    timeElapsedMs: num(native.VIR_DOMAIN_JOB_TIME_ELAPSED),
    errorMessage: typeof err === 'string' ? err : null,
    raw,
  };
}

const eventBaseFields: ReadonlySet<string> = new Set(['eventID', 'domainName', 'domainUUID']);

// libvirt's own numbering, from the addon's constants; a state a newer libvirt adds is 'unknown'.
const stateNames = new Map<number, DomainState>(
  Object.entries(native.enums.virDomainState ?? {}).flatMap(([name, value]): [number, DomainState][] => {
    const state = name.replace(/^VIR_DOMAIN_/, '').toLowerCase();
    return (domainStates as readonly string[]).includes(state) ? [[value, state as DomainState]] : [];
  }),
);

function jobTypeName(type: number): JobType {
  return jobTypes[type] ?? 'unknown';
}

/** libvirt's version numbers are major * 1,000,000 + minor * 1,000 + release. */
function versionText(v: number): string {
  return `${Math.floor(v / 1_000_000)}.${Math.floor(v / 1000) % 1000}.${v % 1000}`;
}

export class LibvirtConnection {
  readonly uri: string;
  readonly #conn: NativeConnection;
  readonly #domains = new Map<string, NativeDomain>();

  private constructor(uri: string, conn: NativeConnection) {
    this.uri = uri;
    this.#conn = conn;
  }

  static async open(uri: string, options: { readOnly?: boolean } = {}): Promise<LibvirtConnection> {
    const conn = options.readOnly ? await native.openReadOnly(uri) : await native.open(uri);
    return new LibvirtConnection(uri, conn);
  }

  /** The addon's own connection, for the practice lab (which creates domains from XML). */
  labConnection(): Pick<NativeConnection, 'createXML' | 'lookupByName'> {
    return this.#conn;
  }

  get closed(): boolean {
    return this.#conn.isClosed();
  }

  isAlive(): boolean {
    return this.#conn.isAlive();
  }

  async close(): Promise<void> {
    this.#domains.clear();
    await this.#conn.close();
  }

  /** Keepalive lets libvirt notice a dead daemon within interval × (count + 1) seconds. */
  async setKeepAlive(intervalSeconds: number, count: number): Promise<void> {
    await this.#conn.setKeepAlive(intervalSeconds, count);
  }

  async onClose(listener: (reason: CloseReason) => void): Promise<void> {
    await this.#conn.registerCloseCallback((e) => listener(closeReasons[e.reason] ?? 'unknown'));
  }

  async onBlockJob(listener: (notice: BlockJobNotice) => void): Promise<number> {
    return this.#conn.domainEventRegisterAny(null, native.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, (e) => {
      const status = jobStatuses[e.status];
      if (!status || e.disk === null) return;
      listener({ domain: e.domainName, disk: e.disk, type: jobTypeName(e.type), status });
    });
  }

  async onLifecycle(listener: (domain: string) => void): Promise<number> {
    return this.#conn.domainEventRegisterAny(null, native.VIR_DOMAIN_EVENT_ID_LIFECYCLE, (e) => {
      this.#domains.delete(e.domainName);
      listener(e.domainName);
    });
  }

  /** Threshold crossings of every domain's disks and layers (see setBlockThreshold). */
  async onBlockThreshold(listener: (notice: BlockThresholdNotice) => void): Promise<number> {
    return this.#conn.domainEventRegisterAny(null, native.VIR_DOMAIN_EVENT_ID_BLOCK_THRESHOLD, (e) => {
      if (e.dev === null) return;
      listener({ domain: e.domainName, dev: e.dev, path: e.path, thresholdBytes: e.threshold, excessBytes: e.excess });
    });
  }

  /** I/O errors of every domain's disks, with QEMU's reason ('enospc' when a layer's storage is full). */
  async onIoError(listener: (notice: IoErrorNotice) => void): Promise<number> {
    return this.#conn.domainEventRegisterAny(null, native.VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON, (e) => {
      listener({
        domain: e.domainName,
        srcPath: e.srcPath,
        devAlias: e.devAlias,
        action: ioErrorActions[e.action] ?? 'unknown',
        reason: e.reason ?? '',
      });
    });
  }

  /**
   * The end of every domain's domain-wide job (a backup, a save), with its final statistics.
   * libvirt sends it for jobs that ended well and for failed ones; 'success' tells them apart.
   */
  async onJobCompleted(listener: (notice: JobCompletedNotice) => void): Promise<number> {
    return this.#conn.domainEventRegisterAny(null, native.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, (e) => {
      const raw = present(e, eventBaseFields);
      listener({ domain: e.domainName, stats: jobStatsOf(raw[native.VIR_DOMAIN_JOB_SUCCESS] === false ? 'failed' : 'completed', raw) });
    });
  }

  /** Removes a listener added by one of the on* methods that resolve with an ID. */
  async offEvent(callbackId: number): Promise<void> {
    await this.#conn.domainEventDeregisterAny(callbackId);
  }

  /** The host's capabilities XML (virConnectGetCapabilities). */
  async getCapabilities(): Promise<string> {
    return this.#conn.getCapabilities();
  }

  /**
   * virConnectGetDomainCapabilities; null lets libvirt choose the host's default. Drivers other
   * than QEMU's reject it with VIR_ERR_NO_SUPPORT.
   */
  async getDomainCapabilities(emulatorbin: string | null, arch: string | null, machine: string | null, virttype: string | null): Promise<string> {
    return this.#conn.getDomainCapabilities(emulatorbin, arch, machine, virttype);
  }

  /** What `virsh version --daemon` prints, without virsh. */
  async versions(): Promise<HostVersions> {
    const [lib, hypervisor, hypervisorName] = await Promise.all([this.#conn.getLibVersion(), this.#conn.getVersion(), this.#conn.getType()]);
    return { libvirt: versionText(lib), hypervisorName, hypervisor: hypervisor > 0 ? versionText(hypervisor) : null };
  }

  /**
   * Defines a domain, or replaces the persistent definition of one that exists; resolves with its
   * name. `validate` has libvirt check the XML against its schema first.
   */
  async defineXML(xml: string, options: { validate?: boolean } = {}): Promise<string> {
    const d = await this.#conn.defineXML(xml, options.validate ? native.VIR_DOMAIN_DEFINE_VALIDATE : 0);
    this.#domains.set(d.name(), d);
    return d.name();
  }

  /** Starts a defined domain; `paused` leaves its CPUs stopped. */
  async domainCreate(name: string, options: { paused?: boolean } = {}): Promise<void> {
    await this.#withDomain(name, (d) => d.createWithFlags(options.paused ? native.VIR_DOMAIN_START_PAUSED : 0));
  }

  /**
   * Every domain with its state. One bulk call of state statistics (they need no QEMU monitor, so
   * they are safe while block jobs run, unlike block statistics) instead of a state call per
   * domain; a driver without bulk statistics is asked domain by domain.
   */
  async listDomains(): Promise<RawDomain[]> {
    let records: [NativeDomain, Record<string, string | number | boolean | null>][];
    try {
      records = await this.#conn.getAllDomainStats(native.VIR_DOMAIN_STATS_STATE, 0);
    } catch (err) {
      if (libvirtCode(err) !== 'VIR_ERR_NO_SUPPORT') throw err;
      return this.#listDomainsOneByOne();
    }
    return records.map(([d, fields]) => this.#rawDomain(d, Number(fields['state.state'] ?? 0)));
  }

  async #listDomainsOneByOne(): Promise<RawDomain[]> {
    const domains = await this.#conn.listAllDomains(0);
    const read = await Promise.all(
      domains.map(async (d): Promise<RawDomain | null> => {
        let state: number;
        try {
          [state] = await d.state();
        } catch (err) {
          // Transient domains can vanish between the listing and this call: skip them.
          if (libvirtCode(err) === 'VIR_ERR_NO_DOMAIN') return null;
          throw err;
        }
        return this.#rawDomain(d, state);
      }),
    );
    return read.filter((d): d is RawDomain => d !== null);
  }

  #rawDomain(d: NativeDomain, state: number): RawDomain {
    this.#domains.set(d.name(), d);
    return {
      name: d.name(),
      uuid: d.UUIDString(),
      state: stateNames.get(state) ?? 'unknown',
      active: state !== native.VIR_DOMAIN_SHUTOFF && state !== 0,
    };
  }

  /** The names of the domains that have snapshot metadata (named snapshots), in one call. */
  async domainsWithSnapshots(): Promise<Set<string>> {
    const domains = await this.#conn.listAllDomains(native.VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT);
    return new Set(domains.map((d) => d.name()));
  }

  async domainState(name: string): Promise<DomainState> {
    const [state] = await this.#withDomain(name, (d) => d.state());
    return stateNames.get(state) ?? 'unknown';
  }

  /**
   * The live description, or with `inactive` the persistent one (what the next boot uses).
   * `secure` keeps secrets (passwords), so the XML can be defined again without losing them;
   * libvirt refuses it on a read-only connection (VIR_ERR_OPERATION_DENIED).
   */
  async domainXml(name: string, options: { inactive?: boolean; secure?: boolean } = {}): Promise<string> {
    const flags = (options.inactive ? native.VIR_DOMAIN_XML_INACTIVE : 0) | (options.secure ? native.VIR_DOMAIN_XML_SECURE : 0);
    return this.#withDomain(name, (d) => d.XMLDesc(flags));
  }

  async blockPull(name: string, disk: string, bandwidthBytesPerSec: number): Promise<void> {
    await this.#withDomain(name, (d) => d.blockPull(disk, bandwidthBytesPerSec, native.VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES));
  }

  async blockJobInfo(name: string, disk: string): Promise<RawBlockJob | null> {
    const info = await this.#withDomain(name, (d) => d.blockJobInfo(disk, native.VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES));
    if (!('type' in info)) return null;
    return { type: jobTypeName(info.type), bandwidthBytesPerSec: info.bandwidth, cur: info.cur, end: info.end };
  }

  async blockJobSetSpeed(name: string, disk: string, bandwidthBytesPerSec: number): Promise<void> {
    await this.#withDomain(name, (d) =>
      d.blockJobSetSpeed(disk, bandwidthBytesPerSec, native.VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES),
    );
  }

  /** A partial pull: data above `base` (a `vda[N]` name) moves into the active layer. */
  async blockRebase(name: string, disk: string, base: string | null, bandwidthBytesPerSec: number): Promise<void> {
    await this.#withDomain(name, (d) =>
      d.blockRebase(disk, base, bandwidthBytesPerSec, native.VIR_DOMAIN_BLOCK_REBASE_BANDWIDTH_BYTES),
    );
  }

  async blockCommit(
    name: string,
    disk: string,
    options: { base: string; top: string; active: boolean; deleteLayers: boolean; bandwidthBytesPerSec: number },
  ): Promise<void> {
    const flags =
      native.VIR_DOMAIN_BLOCK_COMMIT_BANDWIDTH_BYTES |
      (options.active ? native.VIR_DOMAIN_BLOCK_COMMIT_ACTIVE : 0) |
      (options.deleteLayers ? native.VIR_DOMAIN_BLOCK_COMMIT_DELETE : 0);
    await this.#withDomain(name, (d) => d.blockCommit(disk, options.base, options.top, options.bandwidthBytesPerSec, flags));
  }

  async blockCopy(
    name: string,
    disk: string,
    options: { destination: string; format: string; shallow: boolean; reuseExisting: boolean; synchronousWrites: boolean; bandwidthBytesPerSec: number },
  ): Promise<void> {
    const destxml = `<disk type='file'><source file='${escapeXml(options.destination)}'/><driver type='${escapeXml(options.format)}'/></disk>`;
    const flags =
      (options.shallow ? native.VIR_DOMAIN_BLOCK_COPY_SHALLOW : 0) |
      (options.reuseExisting ? native.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT : 0) |
      (options.synchronousWrites ? native.VIR_DOMAIN_BLOCK_COPY_SYNCHRONOUS_WRITES : 0);
    const params = options.bandwidthBytesPerSec > 0 ? { [native.VIR_DOMAIN_BLOCK_COPY_BANDWIDTH]: options.bandwidthBytesPerSec } : null;
    await this.#withDomain(name, (d) => d.blockCopy(disk, destxml, params, flags));
  }

  /** An external disk-only snapshot of one disk: a new qcow2 layer on top, no libvirt metadata. */
  async snapshotDisk(name: string, disk: string, destination: string, otherDisks: readonly string[]): Promise<void> {
    const others = otherDisks.map((t) => `<disk name='${escapeXml(t)}' snapshot='no'/>`).join('');
    const xml =
      `<domainsnapshot><description>Strata: new layer for ${escapeXml(disk)}</description><disks>` +
      `<disk name='${escapeXml(disk)}' snapshot='external' type='file'><driver type='qcow2'/><source file='${escapeXml(destination)}'/></disk>` +
      `${others}</disks></domainsnapshot>`;
    const flags =
      native.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | native.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA | native.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
    await this.#withDomain(name, (d) => d.snapshotCreateXML(xml, flags));
  }

  /** Every snapshot libvirt keeps metadata of, with its XML; `secure` as in domainXml. */
  async listAllSnapshots(name: string, options: { secure?: boolean } = {}): Promise<SnapshotDescription[]> {
    return this.#withDomain(name, (d) => d.listAllSnapshots(0, options.secure ? native.VIR_DOMAIN_SNAPSHOT_XML_SECURE : 0));
  }

  /**
   * virDomainSnapshotCreateXML; resolves with the snapshot's name. `redefine` records the metadata
   * of a snapshot that exists (after the definition it names was rewritten), with `current`
   * making it the current one; `diskOnly`, `noMetadata` and `atomic` as in snapshotDisk.
   */
  async snapshotCreateXML(
    name: string,
    xml: string,
    options: { redefine?: boolean; current?: boolean; diskOnly?: boolean; noMetadata?: boolean; atomic?: boolean } = {},
  ): Promise<string> {
    const flags =
      (options.redefine ? native.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE : 0) |
      (options.current ? native.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT : 0) |
      (options.diskOnly ? native.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY : 0) |
      (options.noMetadata ? native.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA : 0) |
      (options.atomic ? native.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC : 0);
    const snapshot = await this.#withDomain(name, (d) => d.snapshotCreateXML(xml, flags));
    return snapshot.getName();
  }

  /**
   * Deletes a snapshot by name. `metadataOnly` forgets libvirt's record and leaves the images
   * alone (the only way for external snapshots on libvirt 9.0); `children` deletes its
   * descendants too.
   */
  async snapshotDelete(name: string, snapshot: string, options: { metadataOnly?: boolean; children?: boolean } = {}): Promise<void> {
    const flags =
      (options.metadataOnly ? native.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY : 0) | (options.children ? native.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN : 0);
    const handle = await this.#withDomain(name, (d) => d.snapshotLookupByName(snapshot));
    await handle.delete(flags);
  }

  /** Grows a running domain's disk (its active layer) to `bytes`. */
  async blockResize(name: string, disk: string, bytes: number): Promise<void> {
    await this.#withDomain(name, (d) => d.blockResize(disk, bytes, native.VIR_DOMAIN_BLOCK_RESIZE_BYTES));
  }

  /** Sizes of every layer of every disk of a running domain, by target and layer index. */
  async layerStats(name: string): Promise<LayerStats[]> {
    const stats = await this.#withDomain(name, (d) => d.stats(native.VIR_DOMAIN_STATS_BLOCK, native.VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING));
    const count = Number(stats['block.count'] ?? 0);
    const out: LayerStats[] = [];
    for (let i = 0; i < count; i++) {
      const get = (k: string): unknown => stats[`block.${i}.${k}`];
      const target = get('name');
      if (typeof target !== 'string') continue;
      const index = get('backingIndex');
      const path = get('path');
      out.push({
        target,
        index: typeof index === 'number' ? index : null,
        path: typeof path === 'string' ? path : null,
        capacity: Number(get('capacity') ?? 0),
        allocation: Number(get('allocation') ?? 0),
        physical: Number(get('physical') ?? 0),
      });
    }
    return out;
  }

  /**
   * Has libvirt send one BLOCK_THRESHOLD event when the allocation of `dev` (a target such as
   * 'vda', or one layer, 'vda[1]') passes `thresholdBytes`; 0 clears it. Running domains only.
   */
  async setBlockThreshold(name: string, dev: string, thresholdBytes: number): Promise<void> {
    await this.#withDomain(name, (d) => d.setBlockThreshold(dev, thresholdBytes));
  }

  async domainResume(name: string): Promise<void> {
    await this.#withDomain(name, (d) => d.resume());
  }

  async domainSuspend(name: string): Promise<void> {
    await this.#withDomain(name, (d) => d.suspend());
  }

  /**
   * Starts a backup job (virDomainBackupBegin) from a <domainbackup> description; a
   * <domaincheckpoint> description, when given, records a checkpoint as the backup starts.
   */
  async backupBegin(name: string, backupXml: string, checkpointXml: string | null): Promise<void> {
    await this.#withDomain(name, (d) => d.backupBegin(backupXml, checkpointXml, 0));
  }

  /** The running backup job's <domainbackup> description. */
  async backupGetXMLDesc(name: string): Promise<string> {
    return this.#withDomain(name, (d) => d.backupGetXMLDesc());
  }

  /**
   * The domain-wide job's statistics. `completed` asks for the last finished job's instead (kept
   * by libvirt until read, or with `keepCompleted` also after).
   */
  async jobStats(name: string, options: { completed?: boolean; keepCompleted?: boolean } = {}): Promise<DomainJobStats> {
    const flags =
      (options.completed ? native.VIR_DOMAIN_JOB_STATS_COMPLETED : 0) | (options.keepCompleted ? native.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED : 0);
    const { type, stats } = await this.#withDomain(name, (d) => d.jobStats(flags));
    return jobStatsOf(domainJobTypes[type] ?? 'none', present(stats));
  }

  /** Aborts the domain-wide job (virDomainAbortJob): a backup, a save. */
  async abortJob(name: string): Promise<void> {
    await this.#withDomain(name, (d) => d.abortJob());
  }

  /** virDomainCheckpointCreateXML; resolves with the checkpoint's name. `redefine` records one that exists. */
  async checkpointCreateXML(name: string, xml: string, options: { redefine?: boolean } = {}): Promise<string> {
    return this.#withDomain(name, (d) => d.checkpointCreateXML(xml, options.redefine ? native.VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE : 0));
  }

  /**
   * Every checkpoint of the domain, parents before children. `size` asks libvirt for the dirty
   * data since each checkpoint (`size='N'` on each `<disk>`, VIR_DOMAIN_CHECKPOINT_XML_SIZE): QEMU
   * computes it, so only a running domain answers, and libvirt fails the whole listing otherwise.
   */
  async listAllCheckpoints(name: string, options: { size?: boolean } = {}): Promise<CheckpointDescription[]> {
    const xmlFlags = options.size ? native.VIR_DOMAIN_CHECKPOINT_XML_SIZE : 0;
    return this.#withDomain(name, (d) => d.listAllCheckpoints(native.VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL, xmlFlags));
  }

  /**
   * Deletes a checkpoint by name (and its bitmaps in the images); `metadataOnly` forgets libvirt's
   * record only, `children` deletes its descendants too.
   */
  async checkpointDelete(name: string, checkpoint: string, options: { metadataOnly?: boolean; children?: boolean } = {}): Promise<void> {
    const flags =
      (options.metadataOnly ? native.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY : 0) |
      (options.children ? native.VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN : 0);
    await this.#withDomain(name, (d) => d.checkpointDelete(checkpoint, flags));
  }

  /**
   * virConnectGetAllDomainStats over every domain of the host: `state` adds state.*, `block`
   * block.*, and `backing` has block.* cover every layer of every chain.
   */
  async allDomainStats(options: { state?: boolean; block?: boolean; backing?: boolean }): Promise<DomainStatsRecord[]> {
    const stats = (options.state ? native.VIR_DOMAIN_STATS_STATE : 0) | (options.block ? native.VIR_DOMAIN_STATS_BLOCK : 0);
    const flags = options.backing ? native.VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING : 0;
    const records = await this.#conn.getAllDomainStats(stats, flags);
    return records.map(([d, fields]) => {
      this.#domains.set(d.name(), d);
      return { name: d.name(), stats: present(fields) };
    });
  }

  /** `async` returns at once and the end comes as a 'cancelled' event (needed for pulls). */
  async blockJobAbort(name: string, disk: string, options: { async?: boolean; pivot?: boolean } = {}): Promise<void> {
    const flags =
      (options.async ? native.VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC : 0) | (options.pivot ? native.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT : 0);
    await this.#withDomain(name, (d) => d.blockJobAbort(disk, flags));
  }

  // Handles are cached by name; a domain destroyed and re-created under the same name has a new
  // UUID, so a "no domain" answer from a cached handle is retried once with a fresh lookup.
  async #withDomain<T>(name: string, call: (d: NativeDomain) => Promise<T>): Promise<T> {
    const cached = this.#domains.get(name);
    if (cached) {
      try {
        return await call(cached);
      } catch (err) {
        if (libvirtCode(err) !== 'VIR_ERR_NO_DOMAIN') throw err;
        this.#domains.delete(name);
      }
    }
    const fresh = await this.#conn.lookupByName(name);
    this.#domains.set(name, fresh);
    return call(fresh);
  }
}
