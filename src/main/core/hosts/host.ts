// One libvirt host: its connection, domains and disks, and the jobs on them, with the operations
// Strata runs there. Every operation is previewed first and refused with a reason when it would
// lose data unconfirmed, hit a busy disk, or go to a read-only connection.
import { existsSync } from 'node:fs';
import type { JobOperation, Operation } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import {
  type ChainPreview,
  type Confirmation,
  type Disk,
  type DomainDetail,
  type DomainSummary,
  type HostInfo,
  type HostLimits,
  type Job,
  type JobType,
} from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { libvirtCode, toStrataError } from '../../libvirt/errors.ts';
import { JobDiscovery } from '../jobs/discovery.ts';
import { parseDomainXml } from '../chains/domain-xml.ts';
import type { EventHub } from '../api/event-hub.ts';
import type { JobHistory } from '../storage/history.ts';
import { HostConnection } from './host-connection.ts';
import { JobTracker, newJob } from '../jobs/job-tracker.ts';
import { launchJob } from '../jobs/job-launch.ts';
import { createPracticeLab, removePracticeLab } from '../lab/practice-lab.ts';
import { previewOperation, requireConfirmations } from '../chains/preview.ts';
import { Scheduler } from '../jobs/scheduler.ts';
import { judgeVanished, type ExpectedChains } from '../jobs/settle.ts';

export interface HostConfig {
  id: string;
  uri: string;
  label: string;
  readOnly: boolean;
  saved: boolean;
  limits: HostLimits;
}

export interface HostEnv {
  hub: EventHub;
  history: JobHistory;
  /** Where practice labs keep their images; null where labs cannot be made. */
  labRoot: string | null;
  keepAliveIntervalSeconds?: number;
  /** How often running domains' disks are checked for jobs started elsewhere (virsh). */
  discoveryIntervalMs?: number;
}

const pivotRetries = 20;
const pivotRetryDelayMs = 250;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const paths = (chain: readonly { path: string }[]): string[] => chain.map((l) => l.path);

/** Whether a URI names this machine, where Strata can see the host's files itself. */
export function isLocalUri(uri: string): boolean {
  try {
    const host = new URL(uri).hostname;
    return host === '' || host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
  } catch {
    return false;
  }
}

function expectedType(disk: Disk, op: JobOperation): JobType {
  if (op.kind === 'commit') return op.top === undefined || disk.chain[0]?.index === op.top ? 'active-commit' : 'commit';
  return op.kind;
}

export class Host {
  readonly id: string;
  readonly uri: string;
  readonly label: string;
  readonly readOnly: boolean;
  readonly saved: boolean;
  readonly jobs: JobTracker;
  readonly #env: HostEnv;
  readonly #connection: HostConnection;
  readonly #scheduler: Scheduler;
  /** Chains before and after each Strata job, to judge a job that ended out of sight. */
  readonly #expected = new Map<string, ExpectedChains>();
  readonly #discovery: JobDiscovery;

  constructor(config: HostConfig, env: HostEnv) {
    this.id = config.id;
    this.uri = config.uri;
    this.label = config.label;
    this.readOnly = config.readOnly;
    this.saved = config.saved;
    this.#env = env;
    this.jobs = new JobTracker({
      hostId: this.id,
      poll: (domain, disk) => this.#conn().blockJobInfo(domain, disk),
      settleVanished: (job) => this.#settleVanished(job),
      emit: (job) => env.hub.emit('job', job),
      ended: (job) => this.#ended(job),
      ready: (job) => void this.#ready(job),
      watched: () => env.hub.watched,
    });
    this.#scheduler = new Scheduler(config.limits, {
      running: () => this.jobs.running(),
      setSpeed: async (job, limit) => {
        await this.#conn().blockJobSetSpeed(job.domain, job.disk, limit);
        this.jobs.setBandwidth(job.domain, job.disk, limit);
      },
      emit: (job) => env.hub.emit('job', job),
    });
    this.#connection = new HostConnection({
      uri: this.uri,
      readOnly: this.readOnly,
      keepAliveIntervalSeconds: env.keepAliveIntervalSeconds ?? 5,
      state: () => env.hub.emit('host', this.info()),
      blockJob: (n) => this.jobs.notice(n),
      lifecycle: (domain) => {
        env.hub.emit('domain.changed', { hostId: this.id, domain });
        void this.#discovery.refresh().catch(() => undefined);
      },
      connected: async (conn) => {
        await this.#discovery.reconcile(conn);
        await this.#scheduler.pump();
      },
    });
    this.#discovery = new JobDiscovery({
      jobs: this.jobs,
      connection: () => this.#connection.current,
      watched: () => env.hub.watched,
      intervalMs: env.discoveryIntervalMs ?? 500,
    });
  }

  info(): HostInfo {
    return {
      id: this.id,
      uri: this.uri,
      label: this.label,
      readOnly: this.readOnly,
      saved: this.saved,
      state: this.#connection.state,
      reason: this.#connection.reason,
      limits: this.#scheduler.limits,
    };
  }

  start(): Promise<void> {
    return this.#connection.start();
  }

  async stop(): Promise<void> {
    this.#discovery.stop();
    this.jobs.dispose();
    await this.#connection.stop();
  }

  /** Someone started watching: resume progress polling and the search for outside jobs. */
  wake(): void {
    this.jobs.wake();
    this.#discovery.schedule();
  }

  async setLimits(limits: HostLimits): Promise<HostInfo> {
    await this.#scheduler.setLimits(limits);
    this.#env.hub.emit('host', this.info());
    await this.#scheduler.pump();
    await this.#scheduler.rebalance();
    return this.info();
  }

  allJobs(): Job[] {
    return [...this.jobs.list(), ...this.#scheduler.queued()];
  }

  async listDomains(): Promise<DomainSummary[]> {
    const domains = await this.#call('list the domains', (c) => c.listDomains());
    return domains.map(({ name, uuid, state }) => ({ name, uuid, state })).sort((a, b) => a.name.localeCompare(b.name));
  }

  async getDomain(name: string): Promise<DomainDetail> {
    const xml = await this.#call(`read the definition of ${name}`, (c) => c.domainXml(name));
    const parsed = parseDomainXml(xml);
    const state = await this.#call(`read the state of ${name}`, (c) => c.domainState(name));
    const disks = state === 'shutoff' ? parsed.disks : await this.#withSizes(name, parsed.disks);
    return { name, uuid: parsed.uuid, state, disks };
  }

  async #withSizes(name: string, disks: Disk[]): Promise<Disk[]> {
    let stats: Awaited<ReturnType<LibvirtConnection['layerStats']>>;
    try {
      stats = await this.#conn().layerStats(name);
    } catch {
      // Sizes are extra: a driver without stats still shows the chain.
      return disks;
    }
    return disks.map((d) => ({
      ...d,
      chain: d.chain.map((layer) => {
        const s = stats.find((x) => x.target === d.target && (x.index === layer.index || x.path === layer.path));
        return { ...layer, sizes: s ? { capacity: s.capacity, allocation: s.allocation, physical: s.physical } : null };
      }),
    }));
  }

  async #disk(domain: string, target: string): Promise<{ detail: DomainDetail; disk: Disk }> {
    const detail = await this.getDomain(domain);
    const disk = detail.disks.find((d) => d.target === target);
    if (!disk) {
      throw new StrataError('not-found', `${domain} has no disk '${target}'`, {
        hint: `Its disks are: ${detail.disks.map((d) => d.target).join(', ') || 'none'}.`,
      });
    }
    return { detail, disk };
  }

  async preview(domain: string, target: string, op: Operation): Promise<ChainPreview> {
    const { disk } = await this.#disk(domain, target);
    return previewOperation(disk, op);
  }

  pull(domain: string, disk: string, bandwidthBytesPerSec: number): Promise<Job> {
    return this.startJob(domain, disk, { kind: 'pull' }, bandwidthBytesPerSec, [], 'refuse');
  }

  async startJob(
    domain: string,
    target: string,
    op: JobOperation,
    bandwidthBytesPerSec: number,
    confirm: readonly Confirmation[],
    whenBusy: 'refuse' | 'queue',
  ): Promise<Job> {
    this.#refuseReadOnly();
    const { detail, disk } = await this.#disk(domain, target);
    if (detail.state !== 'running' && detail.state !== 'paused') {
      throw new StrataError('conflict', `${domain} is ${detail.state}: block jobs run only on a running domain`);
    }
    const preview = previewOperation(disk, op);
    requireConfirmations(preview, confirm, op);
    if (op.kind === 'copy') this.#checkDestination(op);
    await this.#observeLive(domain, target);
    const why = this.#scheduler.whyWaiting(domain, target);
    if (why !== null) {
      if (whenBusy === 'refuse') {
        const busy = this.jobs.active(domain, target) ?? this.#scheduler.queued().find((j) => j.domain === domain && j.disk === target);
        throw new StrataError('conflict', busy ? `${domain}/${target} already has a ${busy.type} job ${busy.phase}` : `Not started: ${why}`, {
          hint: busy
            ? 'Wait for it to finish or abort it first: a disk runs one block job at a time. Or send the request with whenBusy: "queue".'
            : 'Send the request with whenBusy: "queue" to start it when there is room.',
        });
      }
      return this.#enqueue(domain, disk, op, bandwidthBytesPerSec, confirm);
    }
    return this.#launch(domain, disk, op, bandwidthBytesPerSec, preview);
  }

  async #launch(domain: string, disk: Disk, op: JobOperation, requested: number, preview: ChainPreview, id?: string): Promise<Job> {
    const running = this.jobs.running().length + 1;
    const limit = this.#scheduler.effectiveLimit(requested, running);
    this.jobs.expect(domain, disk.target);
    let type: JobType;
    try {
      type = await this.#call(`start a ${op.kind} on ${domain}/${disk.target}`, (c) => launchJob(c, domain, disk, op, limit));
    } catch (err) {
      this.jobs.unexpect(domain, disk.target);
      throw err;
    }
    const mirrors = op.kind !== 'pull' && (type === 'copy' || type === 'active-commit');
    const afterReady = mirrors ? (op.afterReady ?? 'wait') : null;
    const job = this.jobs.begin(domain, disk.target, type, {
      bandwidthBytesPerSec: limit,
      requestedBandwidthBytesPerSec: requested,
      afterReady,
      ...(id ? { id } : {}),
    });
    // (A job that was over before the call above returned has already ended in begin().)
    if (this.jobs.active(domain, disk.target)?.id === job.id) {
      this.#expected.set(job.id, { before: paths(preview.before), after: paths(preview.after) });
    }
    await this.#scheduler.rebalance();
    return this.jobs.active(domain, disk.target) ?? job;
  }

  #enqueue(domain: string, disk: Disk, op: JobOperation, requested: number, confirm: readonly Confirmation[]): Job {
    const job = newJob({
      hostId: this.id,
      domain,
      disk: disk.target,
      type: expectedType(disk, op),
      phase: 'queued',
      origin: 'strata',
      now: Date.now(),
      requested,
    });
    this.#scheduler.enqueue({
      job,
      launch: async () => {
        try {
          // The chain may have changed while the job waited: preview and confirm it again.
          const { disk: current } = await this.#disk(domain, disk.target);
          const preview = previewOperation(current, op);
          requireConfirmations(preview, confirm, op);
          await this.#launch(domain, current, op, requested, preview, job.id);
        } catch (err) {
          const e = toStrataError(err);
          this.#finishUnstarted(job, 'failed', `could not start after waiting in the queue: ${e.message}`);
          throw e;
        }
      },
    });
    return { ...job };
  }

  #finishUnstarted(job: Job, phase: 'failed' | 'cancelled', outcome: string): Job {
    const ended: Job = { ...job, phase, outcome, endedAt: Date.now(), updatedAt: Date.now() };
    this.#env.hub.emit('job', ended);
    void this.#env.history.add(ended);
    return ended;
  }

  #checkDestination(op: Extract<JobOperation, { kind: 'copy' }>): void {
    if (!isLocalUri(this.uri)) return;
    const exists = existsSync(op.destination);
    if (exists && !op.reuseExisting) {
      throw new StrataError('conflict', `${op.destination} already exists: Strata does not write over a file unless asked`, {
        hint: 'Choose a new path, or set reuseExisting with the confirmation "reuse-existing-file".',
      });
    }
    if (!exists && op.reuseExisting) {
      throw new StrataError('invalid-request', `reuseExisting is set but ${op.destination} does not exist`, {
        hint: 'Create the image first (same virtual size as the disk), or leave reuseExisting off to let libvirt create it.',
      });
    }
  }

  async pivot(domain: string, disk: string): Promise<Job> {
    this.#refuseReadOnly();
    const job = await this.#requireJob(domain, disk);
    if (job.type !== 'copy' && job.type !== 'active-commit') {
      throw new StrataError('conflict', `a ${job.type} job has no pivot: only copies and active commits switch images`);
    }
    if (job.phase !== 'ready') {
      const mirror = parseDomainXml(await this.#call(`read ${domain}`, (c) => c.domainXml(domain))).mirrors.get(disk);
      if (mirror?.ready) this.jobs.markReady({ domain, disk });
      else {
        throw new StrataError('conflict', `the ${job.type} on ${domain}/${disk} is not ready yet (${job.phase}): a pivot now would lose writes`, {
          hint: 'Wait for the ready phase; Strata can pivot by itself at ready if the job is started with afterReady: "pivot".',
        });
      }
    }
    await this.#pivotWithRetry(domain, disk);
    return this.jobs.active(domain, disk) ?? { ...job, phase: 'pivoting' };
  }

  // libvirt may report ready a moment before QEMU accepts the switch ("not ready for pivot yet",
  // VIR_ERR_BLOCK_COPY_ACTIVE); that answer is retried, anything else is not.
  async #pivotWithRetry(domain: string, disk: string): Promise<void> {
    this.jobs.setPhase(domain, disk, 'pivoting');
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#conn().blockJobAbort(domain, disk, { async: true, pivot: true });
        return;
      } catch (err) {
        if (libvirtCode(err) === 'VIR_ERR_BLOCK_COPY_ACTIVE' && attempt < pivotRetries) {
          await sleep(pivotRetryDelayMs);
          continue;
        }
        this.jobs.setPhase(domain, disk, 'ready');
        throw toStrataError(err, `Could not pivot ${domain}/${disk}`);
      }
    }
  }

  async #ready(job: Job): Promise<void> {
    if (job.origin !== 'strata' || job.afterReady === 'wait' || job.afterReady === null) return;
    try {
      if (job.afterReady === 'pivot') {
        await this.#pivotWithRetry(job.domain, job.disk);
      } else {
        this.jobs.markKeeping(job.domain, job.disk);
        await this.#conn().blockJobAbort(job.domain, job.disk, { async: true });
      }
    } catch {
      // The job stays ready, shown as such; the user can pivot or abort by hand.
    }
  }

  async abort(domain: string, disk: string): Promise<Job> {
    this.#refuseReadOnly();
    const queued = this.#scheduler.dequeue(domain, disk);
    if (queued) return this.#finishUnstarted(queued, 'cancelled', 'removed from the queue before it started');
    const job = await this.#requireJob(domain, disk);
    // ASYNC: a pull's abort otherwise waits for QEMU to stop; the 'cancelled' event ends it.
    await this.#call(`abort the job on ${domain}/${disk}`, (c) => c.blockJobAbort(domain, disk, { async: true }));
    this.jobs.setPhase(domain, disk, 'aborting');
    return this.jobs.active(domain, disk) ?? { ...job, phase: 'aborting' };
  }

  async setSpeed(domain: string, disk: string, requested: number): Promise<Job> {
    this.#refuseReadOnly();
    await this.#requireJob(domain, disk);
    const limit = this.#scheduler.effectiveLimit(requested, this.jobs.running().length);
    await this.#call(`change the bandwidth limit of the job on ${domain}/${disk}`, (c) => c.blockJobSetSpeed(domain, disk, limit));
    const job = this.jobs.setBandwidth(domain, disk, limit, requested);
    if (!job) throw new StrataError('conflict', `the job on ${domain}/${disk} ended before its limit could change`);
    return job;
  }

  async snapshot(domain: string, target: string, destination: string | undefined): Promise<Disk> {
    this.#refuseReadOnly();
    const { detail, disk } = await this.#disk(domain, target);
    if (this.jobs.active(domain, target)) throw new StrataError('conflict', `${domain}/${target} has a block job running: snapshot it afterwards`);
    const preview = previewOperation(disk, { kind: 'snapshot', ...(destination ? { destination } : {}) });
    const path = preview.created?.path;
    if (!path) throw new StrataError('internal', 'the snapshot preview names no new layer');
    if (isLocalUri(this.uri) && existsSync(path)) {
      throw new StrataError('conflict', `${path} already exists: Strata does not write over a file`, { hint: 'Choose another destination.' });
    }
    const others = detail.disks.filter((d) => d.target !== target && d.chain.length > 0).map((d) => d.target);
    await this.#call(`add a layer to ${domain}/${target}`, (c) => c.snapshotDisk(domain, target, path, others));
    this.#env.hub.emit('domain.changed', { hostId: this.id, domain });
    return (await this.#disk(domain, target)).disk;
  }

  async createLab(): Promise<DomainDetail> {
    this.#refuseReadOnly();
    const root = this.#env.labRoot;
    if (!root || !isLocalUri(this.uri)) {
      throw new StrataError('conflict', `practice labs are made on this machine only; ${this.label} is remote`, {
        hint: 'Add a local host (qemu:///system or qemu:///session) to make a lab.',
      });
    }
    const name = await this.#call('create a practice lab', (c) => createPracticeLab(c, root));
    await this.#discovery.refresh();
    this.#env.hub.emit('domain.changed', { hostId: this.id, domain: name });
    return this.getDomain(name);
  }

  async removeLab(domain: string): Promise<{ removed: string }> {
    this.#refuseReadOnly();
    const root = this.#env.labRoot;
    if (!root) throw new StrataError('conflict', 'practice labs are not available in this run');
    await this.#call(`remove the practice lab ${domain}`, (c) => removePracticeLab(c, root, domain));
    this.#env.hub.emit('domain.changed', { hostId: this.id, domain });
    return { removed: domain };
  }

  #refuseReadOnly(): void {
    if (this.readOnly) {
      throw new StrataError('conflict', `${this.label} is connected read-only: Strata can watch its jobs but not start or steer them`, {
        hint: 'Add the host again without read-only to run jobs on it.',
      });
    }
  }

  async #observeLive(domain: string, disk: string): Promise<void> {
    const live = await this.#call(`check ${domain}/${disk} for a running job`, (c) => c.blockJobInfo(domain, disk));
    if (live) this.jobs.observe(domain, disk, live);
  }

  async #requireJob(domain: string, disk: string): Promise<Job> {
    if (!this.jobs.active(domain, disk)) await this.#observeLive(domain, disk);
    const job = this.jobs.active(domain, disk);
    if (!job) {
      throw new StrataError('not-found', `${domain}/${disk} has no block job running`, {
        hint: 'It may have just finished; the disk view shows its outcome.',
      });
    }
    return job;
  }

  #ended(job: Job): void {
    this.#expected.delete(job.id);
    void this.#env.history.add(job);
    this.#env.hub.emit('domain.changed', { hostId: this.id, domain: job.domain });
    void this.#scheduler.pump().then(() => this.#scheduler.rebalance());
  }

  async #settleVanished(job: Job): Promise<{ phase: Job['phase']; outcome: string }> {
    let chain: string[] | null = null;
    try {
      chain = paths((await this.#disk(job.domain, job.disk)).disk.chain);
    } catch {
      // judged as unreadable below
    }
    return judgeVanished(job, chain, this.#expected.get(job.id));
  }

  #conn(): LibvirtConnection {
    const conn = this.#connection.current;
    if (!conn) {
      const reason = this.#connection.reason;
      throw new StrataError('unavailable', `${this.label} is not connected${reason ? `: ${reason}` : ''}`, {
        hint: 'Strata keeps retrying; check that libvirtd is running and the URI is right.',
      });
    }
    return conn;
  }

  async #call<T>(action: string, fn: (c: LibvirtConnection) => Promise<T>): Promise<T> {
    const conn = this.#conn();
    try {
      return await fn(conn);
    } catch (err) {
      throw toStrataError(err, `Could not ${action}`);
    }
  }
}
