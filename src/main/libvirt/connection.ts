// A typed facade over one libvirt connection: names instead of numbers, bandwidth in bytes/s,
// domain handles cached by name. It knows nothing of hosts, jobs or the UI.
import type { JobType } from '../../shared/model.ts';
import { libvirtCode } from './errors.ts';
import { native, type NativeConnection, type NativeDomain } from './native.ts';
import type { BlockJobNotice, BlockJobStatus, CloseReason, RawBlockJob, RawDomain } from './types.ts';

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

const stateNames = new Map<number, string>(
  Object.entries(native.enums.virDomainState ?? {}).map(([name, value]) => [value, name.replace(/^VIR_DOMAIN_/, '').toLowerCase()]),
);

export function jobTypeName(type: number): JobType {
  return jobTypes[type] ?? 'unknown';
}

export class LibvirtConnection {
  readonly uri: string;
  readonly #conn: NativeConnection;
  readonly #domains = new Map<string, NativeDomain>();

  private constructor(uri: string, conn: NativeConnection) {
    this.uri = uri;
    this.#conn = conn;
  }

  static async open(uri: string): Promise<LibvirtConnection> {
    const conn = await native.open(uri);
    return new LibvirtConnection(uri, conn);
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

  onClose(listener: (reason: CloseReason) => void): void {
    this.#conn.registerCloseCallback((e) => listener(closeReasons[e.reason] ?? 'unknown'));
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

  async listDomains(): Promise<RawDomain[]> {
    const domains = await this.#conn.listAllDomains(0);
    return Promise.all(
      domains.map(async (d) => {
        const [state] = await d.state();
        this.#domains.set(d.name(), d);
        return {
          name: d.name(),
          uuid: d.UUIDString(),
          state: stateNames.get(state) ?? 'unknown',
          active: state !== native.VIR_DOMAIN_SHUTOFF && state !== 0,
        };
      }),
    );
  }

  async domainState(name: string): Promise<string> {
    const [state] = await this.#withDomain(name, (d) => d.state());
    return stateNames.get(state) ?? 'unknown';
  }

  async domainXml(name: string): Promise<string> {
    return this.#withDomain(name, (d) => d.XMLDesc(0));
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
