// One libvirt host: its connection, domains and disks, and the jobs on them, with the operations
// Strata runs there. Every operation is previewed first and refused with a reason when it would
// lose data unconfirmed, hit a busy disk, or go to a read-only connection.
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
  type Leftover,
} from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { libvirtCode, toStrataError } from '../../libvirt/errors.ts';
import { log } from '../../log/logger.ts';
import { ChainIndex } from '../chains/chain-index.ts';
import { readDomain } from '../chains/domain-reader.ts';
import { JobDiscovery } from '../jobs/discovery.ts';
import { checkCopyDestination, checkSnapshotDestination, isLocalUri, type DestinationRules } from './destinations.ts';
import { parseDomainXml } from '../chains/domain-xml.ts';
import type { EventHub } from '../api/event-hub.ts';
import type { JobHistory } from '../storage/history.ts';
import { HostConnection } from './host-connection.ts';
import { Leftovers, noteLeftover } from './leftovers.ts';
import { JobTracker } from '../jobs/job-tracker.ts';
import { launchJob } from '../jobs/job-launch.ts';
import { createPracticeLab, removePracticeLab } from '../lab/practice-lab.ts';
import { previewOperation, requireConfirmations } from '../chains/preview.ts';
import { Scheduler } from '../jobs/scheduler.ts';
import { SpeedChanges } from '../jobs/speed-changes.ts';
import { fullDestinationReason } from '../jobs/failure-reason.ts';
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
  /** Strata's data folder (saved hosts, history, logs): no copy or new layer may be written there. */
  dataDir?: string;
  keepAliveIntervalSeconds?: number;
  /** How often running domains' disks are checked for jobs started elsewhere (virsh). */
  discoveryIntervalMs?: number;
}

const pivotRetries = 20;
const pivotRetryDelayMs = 250;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const paths = (chain: readonly { path: string }[]): string[] => chain.map((l) => l.path);

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
  readonly #chains = new ChainIndex();
  readonly #speedChanges = new SpeedChanges();
  /** The new file each running Strata copy writes, by job id: what it leaves if it fails. */
  readonly #created = new Map<string, string>();
  readonly #leftovers: Leftovers;

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
      record: (job) => void env.history.add(job),
      ended: (job) => this.#ended(job),
      ready: (job) => void this.#ready(job),
      failureReason: (job) => this.#failureReason(job),
      leftover: (job, reachedReady) => this.#leftover(job, reachedReady),
      watched: () => env.hub.watched,
    });
    this.#scheduler = new Scheduler(config.limits, {
      running: () => this.jobs.running(),
      starting: () => this.jobs.starting(),
      queued: () => this.jobs.queued(),
      setSpeed: async (job, limit) => {
        await this.#conn().blockJobSetSpeed(job.domain, job.disk, limit);
        this.jobs.setBandwidth(job.domain, job.disk, limit);
      },
    });
    this.#connection = new HostConnection({
      uri: this.uri,
      readOnly: this.readOnly,
      keepAliveIntervalSeconds: env.keepAliveIntervalSeconds ?? 5,
      state: () => env.hub.emit('host', this.info()),
      blockJob: (n) => this.jobs.notice(n),
      lifecycle: (domain) => {
        env.hub.emit('domain.changed', { hostId: this.id, domain });
        this.#discovery.refresh().catch((err: unknown) => {
          log.debug('refresh after a lifecycle event failed; the next event or reconnect reads again', { host: this.id, domain, err });
        });
      },
      connected: async (conn) => {
        await this.#discovery.reconcile(conn);
        await this.#scheduler.pump();
      },
    });
    this.#leftovers = new Leftovers({
      hostId: this.id,
      label: this.label,
      local: isLocalUri(this.uri),
      history: env.history,
      jobs: this.jobs,
      call: (action, fn) => this.#call(action, fn),
    });
    this.#discovery = new JobDiscovery({
      jobs: this.jobs,
      chains: this.#chains,
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
      hint: this.#connection.hint,
      retryAt: this.#connection.retryAt,
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
    return this.jobs.list();
  }

  async listDomains(): Promise<DomainSummary[]> {
    const domains = await this.#call('list the domains', (c) => c.listDomains());
    return domains.map(({ name, uuid, state }) => ({ name, uuid, state })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The domain with its chains and, while it runs, every layer's sizes. */
  getDomain(name: string): Promise<DomainDetail> {
    return this.#readDomain(name, true);
  }

  // Sizes cost a stats call; only what shows them (the domain view, a preview's estimate) asks.
  async #readDomain(name: string, sizes: boolean): Promise<DomainDetail> {
    const detail = await readDomain(this.#conn(), name, { sizes }, (action, fn) => this.#call(action, fn));
    this.#chains.set(name, detail.disks);
    return detail;
  }

  async #disk(domain: string, target: string, sizes = false): Promise<{ detail: DomainDetail; disk: Disk }> {
    const detail = await this.#readDomain(domain, sizes);
    const disk = detail.disks.find((d) => d.target === target);
    if (!disk) {
      throw new StrataError('not-found', `${domain} has no disk '${target}'`, {
        hint: `Its disks are: ${detail.disks.map((d) => d.target).join(', ') || 'none'}.`,
      });
    }
    return { detail, disk };
  }

  /** The preview with what only the host knows: the other domains that share a changed layer. */
  #preview(domain: string, disk: Disk, op: Operation): ChainPreview {
    const preview = previewOperation(disk, op);
    const sharedWith = this.#chains.sharedWith(domain, disk, op, preview);
    return { ...preview, sharedWith, needs: sharedWith.length > 0 ? [...preview.needs, 'shared-layers'] : preview.needs };
  }

  async preview(domain: string, target: string, op: Operation): Promise<ChainPreview> {
    const { disk } = await this.#disk(domain, target, true);
    return this.#preview(domain, disk, op);
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
    const preview = this.#preview(domain, disk, op);
    requireConfirmations(preview, confirm, op);
    if (op.kind === 'copy' && isLocalUri(this.uri)) checkCopyDestination(op.destination, op.reuseExisting, this.#destinationRules());
    await this.#observeLive(domain, target);
    const why = this.#scheduler.whyWaiting(domain, target);
    if (why !== null) {
      if (whenBusy === 'refuse') {
        const busy = this.jobs.occupying(domain, target);
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

  async #launch(domain: string, disk: Disk, op: JobOperation, requested: number, preview: ChainPreview, queuedId?: string): Promise<Job> {
    const limit = this.#scheduler.effectiveLimit(requested, this.jobs.running().length + 1);
    const type = expectedType(disk, op);
    const afterReady = op.kind !== 'pull' && (type === 'copy' || type === 'active-commit') ? (op.afterReady ?? 'wait') : null;
    const requestedJob = this.jobs.request(domain, disk.target, type, { requestedBandwidthBytesPerSec: requested, afterReady }, queuedId);
    if (op.kind === 'copy' && !op.reuseExisting && preview.created) this.#created.set(requestedJob.id, preview.created.path);
    const release = op.kind === 'copy' && op.reuseExisting ? this.#leftovers.claim(op.destination) : null;
    let started: JobType;
    try {
      started = await this.#call(`start a ${op.kind} on ${domain}/${disk.target}`, (c) => launchJob(c, domain, disk, op, limit));
    } catch (err) {
      release?.();
      // libvirt removes the file of a copy it could not start: nothing is left.
      this.#created.delete(requestedJob.id);
      const e = toStrataError(err);
      this.jobs.fail(requestedJob.id, `could not start: ${e.message}`);
      throw e;
    }
    const job = this.jobs.begin(domain, disk.target, started, { bandwidthBytesPerSec: limit, requestedBandwidthBytesPerSec: requested });
    // The copy writes into an earlier copy's leftover now: that job no longer offers to remove it.
    if (op.kind === 'copy' && op.reuseExisting) {
      try {
        await this.#leftovers.reused(op.destination);
      } finally {
        release?.();
      }
    }
    // (A job that was over before the call above returned has already ended in begin().)
    if (this.jobs.active(domain, disk.target)?.id === job.id) {
      this.#expected.set(job.id, { before: paths(preview.before), after: paths(preview.after) });
    }
    await this.#scheduler.rebalance();
    return this.jobs.active(domain, disk.target) ?? job;
  }

  #enqueue(domain: string, disk: Disk, op: JobOperation, requested: number, confirm: readonly Confirmation[]): Job {
    const afterReady = op.kind === 'pull' ? null : (op.afterReady ?? null);
    const options = { requestedBandwidthBytesPerSec: requested, afterReady };
    const queued: Job = this.jobs.enqueue(domain, disk.target, expectedType(disk, op), options, async () => {
      let current: Disk;
      let preview: ChainPreview;
      try {
        // The chain may have changed while the job waited: preview and confirm it again.
        current = (await this.#disk(domain, disk.target)).disk;
        preview = this.#preview(domain, current, op);
        requireConfirmations(preview, confirm, op);
      } catch (err) {
        const e = toStrataError(err);
        this.jobs.fail(queued.id, `could not start after waiting in the queue: ${e.message}`);
        throw e;
      }
      await this.#launch(domain, current, op, requested, preview, queued.id);
    });
    return queued;
  }

  #destinationRules(): DestinationRules {
    return { dataDir: this.#env.dataDir, labRoot: this.#env.labRoot };
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
    this.jobs.pivoting(domain, disk);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#conn().blockJobAbort(domain, disk, { async: true, pivot: true });
        return;
      } catch (err) {
        if (libvirtCode(err) === 'VIR_ERR_BLOCK_COPY_ACTIVE' && attempt < pivotRetries) {
          await sleep(pivotRetryDelayMs);
          continue;
        }
        const e = toStrataError(err, `Could not pivot ${domain}/${disk}`);
        // The connection died during the call: libvirt may have passed the pivot to QEMU already.
        // The job stays 'pivoting' until the reconnect shows the mirror still ready (the pivot did
        // not happen: ready again) or the job gone (judged from the chain).
        if (e.kind === 'unavailable') log.warn('the connection died during a pivot; the reconnect tells whether it happened', { host: this.id, domain, disk, err });
        else this.jobs.refused(domain, disk);
        throw e;
      }
    }
  }

  async #ready(job: Job): Promise<void> {
    if (job.origin !== 'strata' || job.afterReady === 'wait' || job.afterReady === null) return;
    try {
      if (job.afterReady === 'pivot') {
        await this.#pivotWithRetry(job.domain, job.disk);
      } else {
        this.jobs.aborting(job.domain, job.disk, { keeping: true });
        try {
          await this.#conn().blockJobAbort(job.domain, job.disk, { async: true });
        } catch (err) {
          this.jobs.refused(job.domain, job.disk);
          throw err;
        }
      }
    } catch (err) {
      log.warn(`could not ${job.afterReady} at ready; the job stays ready for the user to pivot or abort`, { host: this.id, job: job.id, err });
    }
  }

  async abort(domain: string, disk: string): Promise<Job> {
    this.#refuseReadOnly();
    const queued = this.jobs.cancelQueued(domain, disk);
    if (queued) return queued;
    const job = await this.#requireJob(domain, disk);
    // Aborting before the call: the 'cancelled' event may come before the call returns.
    this.jobs.aborting(domain, disk);
    try {
      // ASYNC: a pull's abort otherwise waits for QEMU to stop; the 'cancelled' event ends it.
      await this.#call(`abort the job on ${domain}/${disk}`, (c) => c.blockJobAbort(domain, disk, { async: true }));
    } catch (err) {
      this.jobs.refused(domain, disk);
      throw err;
    }
    return this.jobs.active(domain, disk) ?? { ...job, phase: 'aborting' };
  }

  async setSpeed(domain: string, disk: string, requested: number): Promise<Job> {
    this.#refuseReadOnly();
    await this.#requireJob(domain, disk);
    await this.#speedChanges.apply(`${domain}/${disk}`, requested, async (value) => {
      const limit = this.#scheduler.effectiveLimit(value, this.jobs.running().length);
      await this.#call(`change the bandwidth limit of the job on ${domain}/${disk}`, (c) => c.blockJobSetSpeed(domain, disk, limit));
      this.jobs.setBandwidth(domain, disk, limit, value);
    });
    const job = this.jobs.active(domain, disk);
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
    if (isLocalUri(this.uri)) checkSnapshotDestination(path, this.#destinationRules());
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

  /** Removes the file a failed or cancelled copy left, once confirmed (see leftovers.ts). */
  removeLeftover(jobId: string, confirm: readonly Confirmation[]): Promise<Job> {
    this.#refuseReadOnly();
    return this.#leftovers.remove(jobId, confirm);
  }

  // A copy that ends in a pivot or kept at ready made the file it was asked for; one that failed,
  // was cancelled, or ended out of sight may have left a file nobody uses. Cancelled after ready,
  // that file is a whole image of the disk; whatever the last progress said is no measure of it.
  #leftover(job: Job, reachedReady: boolean): Leftover | null {
    const path = this.#created.get(job.id);
    if (path === undefined || job.type !== 'copy' || job.phase === 'completed') return null;
    return noteLeftover(path, job.phase === 'failed' || !reachedReady, isLocalUri(this.uri));
  }

  #ended(job: Job): void {
    this.#expected.delete(job.id);
    this.#created.delete(job.id);
    this.#env.hub.emit('domain.changed', { hostId: this.id, domain: job.domain });
    void this.#scheduler.pump().then(() => this.#scheduler.rebalance());
  }

  // Only a destination on this machine can be looked at; a copy's expected chain begins with it.
  #failureReason(job: Job): string | null {
    const destination = job.type === 'copy' && isLocalUri(this.uri) ? this.#expected.get(job.id)?.after[0] : undefined;
    return destination === undefined ? null : fullDestinationReason(destination);
  }

  async #settleVanished(job: Job): Promise<{ phase: Job['phase']; outcome: string }> {
    let chain: string[] | null = null;
    let running = true;
    try {
      const { detail, disk } = await this.#disk(job.domain, job.disk);
      chain = paths(disk.chain);
      running = detail.state === 'running' || detail.state === 'paused';
    } catch (err) {
      // A transient domain whose QEMU has ended is gone altogether.
      running = !(err instanceof StrataError && err.kind === 'not-found');
      log.debug('the disk of a vanished job cannot be read; its end is judged from what is known', { host: this.id, job: job.id, err });
    }
    return judgeVanished(job, chain, this.#expected.get(job.id), running);
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
