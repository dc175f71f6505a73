// One libvirt host: its connection's life (connecting, connected, lost, retrying, closed), its
// domains and disks, and the jobs on them. Operations check what libvirt would refuse anyway,
// so the user gets a reason in words before anything is attempted.
import { StrataError } from '../../shared/errors.ts';
import type { DomainDetail, DomainSummary, HostInfo, HostState, Job } from '../../shared/model.ts';
import { LibvirtConnection } from '../libvirt/connection.ts';
import { libvirtCode, toStrataError } from '../libvirt/errors.ts';
import type { CloseReason } from '../libvirt/types.ts';
import { backoffMs } from './backoff.ts';
import { parseDomainXml } from './domain-xml.ts';
import type { EventHub } from './event-hub.ts';
import { JobTracker } from './job-tracker.ts';

export interface HostOptions {
  id: string;
  uri: string;
  label?: string;
  /** Seconds between keepalive probes; 0 turns keepalive off. */
  keepAliveIntervalSeconds?: number;
}

const closeWords: Record<CloseReason, string> = {
  error: 'the connection to libvirtd failed',
  eof: 'libvirtd closed the connection (it may be restarting)',
  keepalive: 'libvirtd stopped answering keepalive probes',
  client: 'the connection was closed',
  unknown: 'the connection was lost',
};

export class Host {
  readonly id: string;
  readonly uri: string;
  readonly label: string;
  readonly jobs: JobTracker;
  readonly #hub: EventHub;
  readonly #keepAlive: number;
  #conn: LibvirtConnection | null = null;
  #state: HostState = 'closed';
  #reason: string | null = null;
  #attempt = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  #stopped = false;
  #connecting: Promise<void> | null = null;

  constructor(options: HostOptions, hub: EventHub) {
    this.id = options.id;
    this.uri = options.uri;
    this.label = options.label ?? options.uri;
    this.#hub = hub;
    this.#keepAlive = options.keepAliveIntervalSeconds ?? 5;
    this.jobs = new JobTracker({
      hostId: this.id,
      poll: (domain, disk) => this.#connected().blockJobInfo(domain, disk),
      settleVanished: (job) => this.#settleVanished(job),
      emit: (job) => this.#hub.emit('job', job),
      ended: (job) => this.#hub.emit('domain.changed', { hostId: this.id, domain: job.domain }),
      watched: () => this.#hub.watched,
    });
  }

  info(): HostInfo {
    return { id: this.id, uri: this.uri, label: this.label, state: this.#state, reason: this.#reason };
  }

  /** Connects, and keeps reconnecting after losses until stop(). Resolves after the first try. */
  start(): Promise<void> {
    this.#stopped = false;
    return this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.jobs.dispose();
    const conn = this.#conn;
    this.#conn = null;
    this.#setState('closed', null);
    if (conn) await conn.close().catch(() => undefined);
  }

  async listDomains(): Promise<DomainSummary[]> {
    const domains = await this.#call('list the domains', (c) => c.listDomains());
    return domains.map(({ name, uuid, state }) => ({ name, uuid, state })).sort((a, b) => a.name.localeCompare(b.name));
  }

  async getDomain(name: string): Promise<DomainDetail> {
    const xml = await this.#call(`read the definition of ${name}`, (c) => c.domainXml(name));
    const parsed = parseDomainXml(xml);
    const state = await this.#call(`read the state of ${name}`, (c) => c.domainState(name));
    return { name, uuid: parsed.uuid, state, disks: parsed.disks };
  }

  async pull(domain: string, disk: string, bandwidthBytesPerSec: number): Promise<Job> {
    const detail = await this.getDomain(domain);
    const target = detail.disks.find((d) => d.target === disk);
    if (!target) {
      throw new StrataError('not-found', `${domain} has no disk '${disk}'`, {
        hint: `Its disks are: ${detail.disks.map((d) => d.target).join(', ') || 'none'}.`,
      });
    }
    if (target.chain.length < 2) {
      throw new StrataError('conflict', `${domain}/${disk} has no backing image: there is nothing to pull`, {
        hint: 'A pull copies the backing chain into the active layer; this disk is already a single image.',
      });
    }
    await this.#refuseBusy(domain, disk);
    await this.#call(`start a pull on ${domain}/${disk}`, (c) => c.blockPull(domain, disk, bandwidthBytesPerSec));
    return this.jobs.begin(domain, disk, 'pull', bandwidthBytesPerSec);
  }

  async setSpeed(domain: string, disk: string, bandwidthBytesPerSec: number): Promise<Job> {
    await this.#requireJob(domain, disk);
    await this.#call(`change the bandwidth limit of the job on ${domain}/${disk}`, (c) =>
      c.blockJobSetSpeed(domain, disk, bandwidthBytesPerSec),
    );
    const job = this.jobs.setBandwidth(domain, disk, bandwidthBytesPerSec);
    if (!job) throw new StrataError('conflict', `the job on ${domain}/${disk} ended before its limit could change`);
    return job;
  }

  async abort(domain: string, disk: string): Promise<Job> {
    const job = await this.#requireJob(domain, disk);
    // ASYNC: a pull's abort otherwise waits for QEMU to stop; the 'cancelled' event ends it.
    await this.#call(`abort the job on ${domain}/${disk}`, (c) => c.blockJobAbort(domain, disk, { async: true }));
    this.jobs.setPhase(domain, disk, 'aborting');
    return this.jobs.active(domain, disk) ?? { ...job, phase: 'aborting' };
  }

  async #refuseBusy(domain: string, disk: string): Promise<void> {
    const running = this.jobs.active(domain, disk) ?? null;
    const live = await this.#call(`check ${domain}/${disk} for a running job`, (c) => c.blockJobInfo(domain, disk));
    if (live) this.jobs.observe(domain, disk, live);
    const job = this.jobs.active(domain, disk) ?? running;
    if (live || job) {
      const kind = live?.type ?? job?.type ?? 'block';
      throw new StrataError('conflict', `${domain}/${disk} already has a ${kind} job running`, {
        hint: 'Wait for it to finish or abort it first: a disk runs one block job at a time.',
      });
    }
  }

  async #requireJob(domain: string, disk: string): Promise<Job> {
    const known = this.jobs.active(domain, disk);
    if (known) return known;
    const live = await this.#call(`read the job on ${domain}/${disk}`, (c) => c.blockJobInfo(domain, disk));
    if (!live) {
      throw new StrataError('not-found', `${domain}/${disk} has no block job running`, {
        hint: 'It may have just finished; the disk view shows its outcome.',
      });
    }
    this.jobs.observe(domain, disk, live);
    const job = this.jobs.active(domain, disk);
    if (!job) throw new StrataError('not-found', `${domain}/${disk} has no block job running`);
    return job;
  }

  // A job that vanished without an end event (the daemon was away, or the event was lost) is
  // judged by its effect: a pull whose chain collapsed completed; otherwise it cannot be known.
  async #settleVanished(job: Job): Promise<{ phase: Job['phase']; outcome: string }> {
    if (job.phase === 'aborting') return { phase: 'cancelled', outcome: 'cancelled' };
    if (job.type === 'pull') {
      const detail = await this.getDomain(job.domain);
      const disk = detail.disks.find((d) => d.target === job.disk);
      if (disk && disk.chain.length === 1) return { phase: 'completed', outcome: 'completed (seen from the chain)' };
    }
    return { phase: 'failed', outcome: 'ended while Strata could not see it; the outcome is unknown' };
  }

  #connected(): LibvirtConnection {
    if (!this.#conn || this.#state !== 'connected') {
      throw new StrataError('unavailable', `${this.label} is not connected${this.#reason ? `: ${this.#reason}` : ''}`, {
        hint: 'Strata keeps retrying; check that libvirtd is running and the URI is right.',
      });
    }
    return this.#conn;
  }

  async #call<T>(action: string, fn: (c: LibvirtConnection) => Promise<T>): Promise<T> {
    const conn = this.#connected();
    try {
      return await fn(conn);
    } catch (err) {
      throw toStrataError(err, `Could not ${action}`);
    }
  }

  #setState(state: HostState, reason: string | null): void {
    if (this.#state === state && this.#reason === reason) return;
    this.#state = state;
    this.#reason = reason;
    this.#hub.emit('host', this.info());
  }

  #connect(): Promise<void> {
    this.#connecting ??= this.#tryConnect().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  async #tryConnect(): Promise<void> {
    this.#setState(this.#attempt === 0 ? 'connecting' : 'retrying', this.#reason);
    let conn: LibvirtConnection | null = null;
    try {
      conn = await LibvirtConnection.open(this.uri);
      if (this.#keepAlive > 0) await this.#enableKeepAlive(conn);
      const opened = conn;
      conn.onClose((reason) => this.#lost(opened, closeWords[reason]));
      await conn.onBlockJob((n) => this.jobs.notice(n));
      await conn.onLifecycle((domain) => this.#hub.emit('domain.changed', { hostId: this.id, domain }));
      if (this.#stopped) {
        await conn.close();
        return;
      }
      this.#conn = conn;
      this.#attempt = 0;
      this.#setState('connected', null);
      await this.#reconcile();
    } catch (err) {
      if (conn) await conn.close().catch(() => undefined);
      if (this.#conn === conn) this.#conn = null;
      const e = toStrataError(err);
      this.#scheduleRetry(`cannot connect to ${this.uri}: ${e.message}`);
    }
  }

  // In-process drivers (test:///, some local ones) have no daemon to probe and say so.
  async #enableKeepAlive(conn: LibvirtConnection): Promise<void> {
    try {
      await conn.setKeepAlive(this.#keepAlive, 3);
    } catch (err) {
      if (libvirtCode(err) !== 'VIR_ERR_NO_SUPPORT') throw err;
    }
  }

  #lost(conn: LibvirtConnection, reason: string): void {
    if (this.#conn !== conn) return;
    this.#conn = null;
    void conn.close().catch(() => undefined);
    this.#setState('lost', reason);
    this.#scheduleRetry(reason);
  }

  #scheduleRetry(reason: string): void {
    if (this.#stopped) return;
    const delay = backoffMs(this.#attempt++);
    this.#setState('retrying', reason);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#connect();
    }, delay);
  }

  // After (re)connecting: events sent while away are lost, so read every running domain's
  // disks and jobs again. Jobs that finished meanwhile are settled; jobs started elsewhere appear.
  async #reconcile(): Promise<void> {
    const conn = this.#connected();
    const domains = (await conn.listDomains()).filter((d) => d.active);
    const seen = new Set<string>();
    await Promise.all(
      domains.map(async (d) => {
        try {
          const { disks } = parseDomainXml(await conn.domainXml(d.name));
          await Promise.all(
            disks.map(async (disk) => {
              const info = await conn.blockJobInfo(d.name, disk.target);
              if (info) seen.add(`${d.name}/${disk.target}`);
              this.jobs.observe(d.name, disk.target, info);
            }),
          );
        } catch {
          // The domain stopped while being read: it has no jobs left to find.
        }
      }),
    );
    for (const job of this.jobs.list()) {
      if (job.endedAt === null && !seen.has(`${job.domain}/${job.disk}`)) this.jobs.observe(job.domain, job.disk, null);
    }
    this.jobs.wake();
  }
}
