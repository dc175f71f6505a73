// What Strata does with the jobs of one host: starts them (at once, or through the queue when the
// host has no room), pivots with a retry, acts at ready as the job was started to (pivot, keep or
// wait), aborts, changes limits, and keeps what only the start knew (the chains expected before
// and after, the new file a copy writes). JobTracker keeps each job's record; this is the one
// place that asks libvirt to change a job.
import type { JobOperation } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { ChainPreview, Confirmation, Disk, DomainDetail, HostLimits, Job, JobEvent, JobType, Leftover } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import type { RawBlockJob } from '../../libvirt/types.ts';
import { libvirtCode, toStrataError } from '../../libvirt/errors.ts';
import { log } from '../../log/logger.ts';
import { requireConfirmations } from '../chains/preview.ts';
import { checkCopyDestination, type DestinationRules } from '../hosts/destinations.ts';
import type { JobHistory } from '../storage/history.ts';
import { fullDestinationReason } from './failure-reason.ts';
import { launchJob } from './job-launch.ts';
import { Leftovers, noteLeftover } from './leftovers.ts';
import { JobTracker } from './job-tracker.ts';
import type { PollTimer } from './job-poller.ts';
import type { OfflineOperation } from '../offline/plan.ts';
import { diskKey } from './tracked-job.ts';
import { OfflineRuns, type OfflineFinish, type OfflineRunsDeps } from './offline-runs.ts';
import { Scheduler } from './scheduler.ts';
import { judgeVanished, type ExpectedChains } from './settle.ts';
import { SpeedChanges } from './speed-changes.ts';

export interface JobRunnerDeps {
  hostId: string;
  label: string;
  /** The host is this machine: its files can be looked at (destinations, leftovers). */
  local: boolean;
  limits: HostLimits;
  history: JobHistory;
  emit(event: JobEvent): void;
  /** A job ended: the domain's chains may have changed. */
  domainChanged(domain: string): void;
  /** A Strata job completed: its disk's chain went from `before` to `after` (paths, active first). */
  chainChanged?(job: Job, chains: ExpectedChains): void;
  watched(): boolean;
  /** The host's connection, or a StrataError saying why there is none. */
  conn(): LibvirtConnection;
  /** Runs a libvirt call on the host's connection, its errors made Strata's. */
  call<T>(action: string, fn: (c: LibvirtConnection) => Promise<T>): Promise<T>;
  /** Reads a domain and one of its disks (no sizes); not-found when the disk is not there. */
  disk(domain: string, target: string): Promise<{ detail: DomainDetail; disk: Disk }>;
  /** The operation's preview, with the other domains that share a changed layer. */
  preview(domain: string, disk: Disk, op: JobOperation): ChainPreview;
  destinationRules(): DestinationRules;
  now?: () => number;
  pollIntervalMs?: number;
  pollTimer?: PollTimer;
  /** How long to wait before asking again for a pivot QEMU is not ready for. */
  pivotRetryDelayMs?: number;
  /** Jobs on shut-off domains (qemu-storage-daemon); absent, such domains run none. */
  offline?: Omit<OfflineRunsDeps, 'hostId' | 'jobs'>;
}

// libvirt may report ready a moment before QEMU accepts the switch: about 5 s of retries.
const pivotRetries = 20;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const paths = (chain: readonly { path: string }[]): string[] => chain.map((l) => l.path);

/**
 * A job Strata runs itself outside libvirt and qemu-storage-daemon (a remote host's restore, by
 * qemu-img there): its progress read, and its cancel, by the user ('abort') or because Strata
 * quits ('quit'). Its end is told through `end` (startOwn).
 */
export interface OwnRun {
  poll(): RawBlockJob;
  cancel(cause: 'abort' | 'quit'): Promise<void>;
}

/** How long closing waits for Strata's own jobs to end (below the 5 s the app gives the close). */
const ownCloseMs = 4000;

const isRunning = (state: string): boolean => state === 'running' || state === 'paused';

function expectedType(disk: Disk, op: JobOperation): JobType {
  if (op.kind === 'commit') return op.top === undefined || disk.chain[0]?.index === op.top ? 'active-commit' : 'commit';
  return op.kind;
}

export class JobRunner {
  readonly jobs: JobTracker;
  readonly #deps: JobRunnerDeps;
  readonly #scheduler: Scheduler;
  readonly #speedChanges = new SpeedChanges();
  readonly #leftovers: Leftovers;
  /** Chains before and after each Strata job, to judge a job that ended out of sight. */
  readonly #expected = new Map<string, ExpectedChains>();
  /** The new file each running Strata copy writes, by job id: what it leaves if it fails. */
  readonly #created = new Map<string, string>();
  readonly #offline: OfflineRuns | null;
  /** Jobs of Strata's own outside libvirt and the offline engine, by disk (domain/disk), and their ends. */
  readonly #own = new Map<string, OwnRun & { ended: Promise<void> }>();
  /** Set once closing began: nothing leaves the queue, and no limit moves. */
  #closing = false;

  constructor(deps: JobRunnerDeps) {
    this.#deps = deps;
    this.jobs = new JobTracker({
      hostId: deps.hostId,
      poll: async (domain, disk) => {
        const own = this.#own.get(diskKey(domain, disk));
        if (own) return own.poll();
        return this.#offline?.has(domain, disk) ? this.#offline.poll(domain, disk) : deps.conn().blockJobInfo(domain, disk);
      },
      settleVanished: (job) => this.#settleVanished(job),
      emit: (job, transition) => deps.emit({ ...job, transition }),
      record: (job) => void deps.history.add(job),
      rerecord: (job) => deps.history.replace(job),
      ended: (job) => this.#ended(job),
      ready: (job) => void this.#ready(job),
      failureReason: (job) => this.#failureReason(job),
      leftover: (job, reachedReady) => this.#leftover(job, reachedReady),
      watched: deps.watched,
      ...(deps.now ? { now: deps.now } : {}),
      ...(deps.pollIntervalMs !== undefined ? { pollIntervalMs: deps.pollIntervalMs } : {}),
      ...(deps.pollTimer ? { pollTimer: deps.pollTimer } : {}),
    });
    this.#scheduler = new Scheduler(deps.limits, {
      running: () => this.jobs.running(),
      starting: () => this.jobs.starting(),
      queued: () => this.jobs.queued(),
      setSpeed: async (job, limit) => {
        // Its limit was given at its start and cannot change: the budget counts it as it is.
        if (this.#own.has(diskKey(job.domain, job.disk))) return;
        if (this.#offline?.has(job.domain, job.disk)) await this.#offline.setSpeed(job.domain, job.disk, limit);
        else await deps.conn().blockJobSetSpeed(job.domain, job.disk, limit);
        this.jobs.setBandwidth(job.domain, job.disk, limit);
      },
    });
    this.#offline = deps.offline ? new OfflineRuns({ ...deps.offline, hostId: deps.hostId, jobs: this.jobs }) : null;
    this.#leftovers = new Leftovers({ hostId: deps.hostId, label: deps.label, local: deps.local, history: deps.history, jobs: this.jobs, call: deps.call });
  }

  get limits(): HostLimits {
    return this.#scheduler.limits;
  }

  /** New limits: waiting jobs that fit now start, and running ones get their new share. */
  async setLimits(limits: HostLimits, told: () => void): Promise<void> {
    await this.#scheduler.setLimits(limits);
    told();
    await this.pump();
    await this.#scheduler.rebalance();
  }

  /** Starts the waiting jobs that fit now (after a reconnect, or when a job ended). */
  pump(): Promise<void> {
    return this.#scheduler.pump();
  }

  /**
   * `preflight` refuses a job the host cannot carry out (space, QEMU's access, a broken chain); it
   * runs after Strata's own rules, so a request that breaks one is told that rule first.
   */
  async start(
    domain: string,
    target: string,
    op: JobOperation,
    requested: number,
    confirm: readonly Confirmation[],
    whenBusy: 'refuse' | 'queue',
    preflight?: () => Promise<void>,
  ): Promise<Job> {
    const { detail, disk } = await this.#deps.disk(domain, target);
    const offline = this.#refuseState(domain, detail.state);
    const preview = this.#deps.preview(domain, disk, op);
    requireConfirmations(preview, confirm, op);
    if (op.kind === 'copy' && this.#deps.local) checkCopyDestination(op.destination, op.reuseExisting, this.#deps.destinationRules());
    await preflight?.();
    if (!offline) await this.#observeLive(domain, target);
    const why = this.#scheduler.whyWaiting(domain, target);
    if (why === null) return this.#launch(domain, disk, op, requested, preview, offline);
    if (whenBusy === 'queue') return this.#enqueue(domain, disk, op, requested, confirm, offline, preflight);
    const busy = this.jobs.occupying(domain, target);
    throw new StrataError('conflict', busy ? `${domain}/${target} already has a ${busy.type} job ${busy.phase}` : `Not started: ${why}`, {
      hint: busy
        ? 'Wait for it to finish or abort it first: a disk runs one block job at a time. Or send the request with whenBusy: "queue".'
        : 'Send the request with whenBusy: "queue" to start it when there is room.',
    });
  }

  /**
   * Whether the job runs offline (a shut-off domain, through qemu-storage-daemon); throws when the
   * domain's state allows no job here.
   */
  #refuseState(domain: string, state: string): boolean {
    if (isRunning(state)) return false;
    if (state === 'shutoff' && this.#offline) {
      this.#offline.refuseHere(domain);
      return true;
    }
    throw new StrataError('conflict', `${domain} is ${state}: block jobs run on a running domain${this.#offline ? ', or offline on a shut-off one' : ''}`);
  }

  // Offline, a copy has no pivot to wait for: the definition switches to the copy once its data is
  // complete ('wait' and 'pivot' alike), or stays ('keep').
  #afterReady(type: JobType, op: JobOperation, offline: boolean): Job['afterReady'] {
    if (op.kind === 'pull' || (type !== 'copy' && type !== 'active-commit')) return null;
    if (!offline) return op.afterReady ?? 'wait';
    return op.kind === 'copy' && op.afterReady === 'keep' ? 'keep' : 'pivot';
  }

  async #launch(domain: string, disk: Disk, op: JobOperation, requested: number, preview: ChainPreview, offline: boolean, queuedId?: string): Promise<Job> {
    const limit = this.#scheduler.effectiveLimit(requested, this.jobs.running().length + 1);
    const type = expectedType(disk, op);
    const afterReady = this.#afterReady(type, op, offline);
    const engine = offline ? ('qemu-storage-daemon' as const) : undefined;
    const requestedJob = this.jobs.request(domain, disk.target, type, { requestedBandwidthBytesPerSec: requested, afterReady, ...(engine ? { engine } : {}) }, queuedId);
    if (op.kind === 'copy' && !op.reuseExisting && preview.created) this.#created.set(requestedJob.id, preview.created.path);
    const release = op.kind === 'copy' && op.reuseExisting ? this.#leftovers.claim(op.destination) : null;
    let started: JobType;
    try {
      started =
        offline && this.#offline
          ? await this.#offline.launch(domain, disk, op, limit, requestedJob.id, preview.deleted.map((l) => l.path))
          : await this.#deps.call(`start a ${op.kind} on ${domain}/${disk.target}`, (c) => launchJob(c, domain, disk, op, limit));
    } catch (err) {
      release?.();
      // libvirt removes the file of a copy it could not start: nothing is left.
      this.#created.delete(requestedJob.id);
      const e = toStrataError(err);
      this.jobs.fail(requestedJob.id, `could not start: ${e.message}`);
      throw e;
    }
    const job = this.jobs.begin(domain, disk.target, started, { bandwidthBytesPerSec: limit, requestedBandwidthBytesPerSec: requested, afterReady });
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

  /**
   * A job of the offline engine on files of Strata's own (a restore from a backup set, a shut-off
   * domain's backup into its set), waiting in the queue when the host has no room. `prepare` runs
   * as it starts (after the wait too), checks what it must and names the files; it throws to
   * refuse the job.
   */
  async startOfflineOwn(domain: string, disk: string, type: JobType, requested: number, prepare: () => Promise<{ operation: OfflineOperation; finish: OfflineFinish }>): Promise<Job> {
    const offline = this.#offline;
    if (!offline) throw new StrataError('conflict', `this host runs no offline jobs: a ${type} runs in qemu-storage-daemon`);
    offline.refuseHere(domain);
    const options = { requestedBandwidthBytesPerSec: requested, afterReady: null, engine: 'qemu-storage-daemon' as const };
    const launch = async (queuedId?: string): Promise<Job> => {
      const limit = this.#scheduler.effectiveLimit(requested, this.jobs.running().length + 1);
      const requestedJob = this.jobs.request(domain, disk, type, options, queuedId);
      try {
        const { operation, finish } = await prepare();
        await offline.launchOwn(domain, disk, operation, type, limit, requestedJob.id, finish);
      } catch (err) {
        const e = toStrataError(err);
        this.jobs.fail(requestedJob.id, `could not start: ${e.message}`);
        throw e;
      }
      const job = this.jobs.begin(domain, disk, type, { bandwidthBytesPerSec: limit, requestedBandwidthBytesPerSec: requested, afterReady: null });
      await this.#scheduler.rebalance();
      return this.jobs.active(domain, disk) ?? job;
    };
    if (this.#scheduler.whyWaiting(domain, disk) === null) return launch();
    const queued: Job = this.jobs.enqueue(domain, disk, type, options, async () => {
      await launch(queued.id);
    });
    return queued;
  }

  /**
   * A job of Strata's own run by `engine` outside libvirt and the offline engine (a remote host's
   * restore), waiting in the queue when the host has no room. `launch` starts it at the limit it
   * gets and returns its run; the run calls `end` once, when it ended.
   */
  async startOwn(
    domain: string,
    disk: string,
    type: JobType,
    requested: number,
    engine: 'qemu-img',
    launch: (limit: number, end: (status: 'completed' | 'failed' | 'cancelled', words: string) => void) => Promise<OwnRun>,
  ): Promise<Job> {
    const options = { requestedBandwidthBytesPerSec: requested, afterReady: null, engine };
    const k = diskKey(domain, disk);
    const start = async (queuedId?: string): Promise<Job> => {
      if (this.#own.has(k)) throw new StrataError('conflict', `a ${type} runs on ${domain}/${disk} already`);
      const limit = this.#scheduler.effectiveLimit(requested, this.jobs.running().length + 1);
      const requestedJob = this.jobs.request(domain, disk, type, options, queuedId);
      let ended: { status: 'completed' | 'failed' | 'cancelled'; words: string } | null = null;
      let begun = false;
      let told = (): void => undefined;
      const endTold = new Promise<void>((resolve) => (told = resolve));
      const end = (status: 'completed' | 'failed' | 'cancelled', words: string): void => {
        this.#own.delete(k);
        if (begun) this.jobs.conclude(domain, disk, status, words);
        else ended = { status, words };
        told();
      };
      try {
        const run = await launch(limit, end);
        this.#own.set(k, { poll: () => run.poll(), cancel: (cause) => run.cancel(cause), ended: endTold });
      } catch (err) {
        const e = toStrataError(err);
        this.jobs.fail(requestedJob.id, `could not start: ${e.message}`);
        throw e;
      }
      const job = this.jobs.begin(domain, disk, type, { bandwidthBytesPerSec: limit, requestedBandwidthBytesPerSec: requested, afterReady: null });
      begun = true;
      // It ended before the job model knew it began (a small file).
      const early = ended as { status: 'completed' | 'failed' | 'cancelled'; words: string } | null;
      if (early) this.jobs.conclude(domain, disk, early.status, early.words);
      await this.#scheduler.rebalance();
      return this.jobs.active(domain, disk) ?? job;
    };
    if (this.#scheduler.whyWaiting(domain, disk) === null) return start();
    const queued: Job = this.jobs.enqueue(domain, disk, type, options, async () => {
      await start(queued.id);
    });
    return queued;
  }

  #enqueue(domain: string, disk: Disk, op: JobOperation, requested: number, confirm: readonly Confirmation[], offline: boolean, preflight?: () => Promise<void>): Job {
    const type = expectedType(disk, op);
    const options = { requestedBandwidthBytesPerSec: requested, afterReady: this.#afterReady(type, op, offline), ...(offline ? { engine: 'qemu-storage-daemon' as const } : {}) };
    const queued: Job = this.jobs.enqueue(domain, disk.target, type, options, async () => {
      let current: Disk;
      let preview: ChainPreview;
      let nowOffline: boolean;
      try {
        // The chain, or the domain's state, may have changed while the job waited: preview and
        // confirm it again, offline or live as the domain is now.
        const read = await this.#deps.disk(domain, disk.target);
        current = read.disk;
        nowOffline = this.#refuseState(domain, read.detail.state);
        preview = this.#deps.preview(domain, current, op);
        requireConfirmations(preview, confirm, op);
        // So may the room where it writes (a job ahead of it took the space): its preflight again.
        await preflight?.();
      } catch (err) {
        const e = toStrataError(err);
        this.jobs.fail(queued.id, `could not start after waiting in the queue: ${e.message}`);
        throw e;
      }
      await this.#launch(domain, current, op, requested, preview, nowOffline, queued.id);
    });
    return queued;
  }

  /** `mirrorReady`: reads whether the live XML shows the mirror ready, when no event said so. */
  async pivot(domain: string, disk: string, mirrorReady: () => Promise<boolean>): Promise<Job> {
    const job = await this.#requireJob(domain, disk);
    if (job.engine === 'qemu-storage-daemon') {
      throw new StrataError('conflict', `the offline ${job.type} on ${domain}/${disk} has no pivot: the domain's definition switches by itself once the data is complete`, {
        hint: 'Wait for the job to complete, or abort it to keep the chain as it was.',
      });
    }
    if (job.type !== 'copy' && job.type !== 'active-commit') {
      throw new StrataError('conflict', `a ${job.type} job has no pivot: only copies and active commits switch images`);
    }
    if (job.phase !== 'ready') {
      if (await mirrorReady()) this.jobs.markReady({ domain, disk });
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
        await this.#deps.conn().blockJobAbort(domain, disk, { async: true, pivot: true });
        return;
      } catch (err) {
        if (libvirtCode(err) === 'VIR_ERR_BLOCK_COPY_ACTIVE' && attempt < pivotRetries) {
          await sleep(this.#deps.pivotRetryDelayMs ?? 250);
          continue;
        }
        const e = toStrataError(err, `Could not pivot ${domain}/${disk}`);
        // The connection died during the call: libvirt may have passed the pivot to QEMU already.
        // The job stays 'pivoting' until the reconnect shows the mirror still ready (the pivot did
        // not happen: ready again) or the job gone (judged from the chain).
        if (e.kind === 'unavailable') log.warn('the connection died during a pivot; the reconnect tells whether it happened', { host: this.#deps.hostId, domain, disk, err });
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
          await this.#deps.conn().blockJobAbort(job.domain, job.disk, { async: true });
        } catch (err) {
          this.jobs.refused(job.domain, job.disk);
          throw err;
        }
      }
    } catch (err) {
      log.warn(`could not ${job.afterReady} at ready; the job stays ready for the user to pivot or abort`, { host: this.#deps.hostId, job: job.id, err });
    }
  }

  async abort(domain: string, disk: string): Promise<Job> {
    const queued = this.jobs.cancelQueued(domain, disk);
    if (queued) return queued;
    const job = await this.#requireJob(domain, disk);
    // Aborting before the call: the 'cancelled' event may come before the call returns.
    this.jobs.aborting(domain, disk);
    try {
      // ASYNC: a pull's abort otherwise waits for QEMU to stop; the 'cancelled' event ends it.
      const own = this.#own.get(diskKey(domain, disk));
      if (own) await own.cancel('abort');
      else if (this.#offline?.has(domain, disk)) await this.#offline.cancel(domain, disk);
      else await this.#deps.call(`abort the job on ${domain}/${disk}`, (c) => c.blockJobAbort(domain, disk, { async: true }));
    } catch (err) {
      this.jobs.refused(domain, disk);
      throw err;
    }
    return this.jobs.active(domain, disk) ?? { ...job, phase: 'aborting' };
  }

  async setSpeed(domain: string, disk: string, requested: number): Promise<Job> {
    await this.#requireJob(domain, disk);
    if (this.#own.has(diskKey(domain, disk))) {
      throw new StrataError('conflict', `the limit of the job on ${domain}/${disk} was given to qemu-img at its start (-r) and cannot change while it runs`, {
        hint: 'Abort it and start it again with another limit.',
      });
    }
    await this.#speedChanges.apply(`${domain}/${disk}`, requested, async (value) => {
      const limit = this.#scheduler.effectiveLimit(value, this.jobs.running().length);
      if (this.#offline?.has(domain, disk)) await this.#offline.setSpeed(domain, disk, limit);
      else await this.#deps.call(`change the bandwidth limit of the job on ${domain}/${disk}`, (c) => c.blockJobSetSpeed(domain, disk, limit));
      this.jobs.setBandwidth(domain, disk, limit, value);
    });
    const job = this.jobs.active(domain, disk);
    if (!job) throw new StrataError('conflict', `the job on ${domain}/${disk} ended before its limit could change`);
    return job;
  }

  /** Removes the file a failed or cancelled copy left, once confirmed (see leftovers.ts). */
  removeLeftover(jobId: string, confirm: readonly Confirmation[]): Promise<Job> {
    return this.#leftovers.remove(jobId, confirm);
  }

  async #observeLive(domain: string, disk: string): Promise<void> {
    if (this.#offline?.has(domain, disk) || this.#own.has(diskKey(domain, disk))) return;
    const live = await this.#deps.call(`check ${domain}/${disk} for a running job`, (c) => c.blockJobInfo(domain, disk));
    if (live) this.jobs.observe(domain, disk, live);
  }

  /**
   * Strata stops following jobs. What runs in libvirt or in an offline job's qemu-storage-daemon
   * goes on, and the next start finds it again. What only this process holds cannot: the queue is
   * dropped, each job ended (and recorded) as never started, and Strata's own jobs (a remote
   * restore's qemu-img) are cancelled, since no one would publish or remove their partial file
   * after the quit. Resolves once those have ended, or after `ownCloseMs` (logged, naming them).
   */
  async close(): Promise<void> {
    this.#closing = true;
    this.jobs.dropQueued('not started: Strata quit while it waited in the queue');
    const ends = [...this.#own.entries()].map(([k, run]) =>
      run.cancel('quit').then(
        () => run.ended,
        (err: unknown) => {
          // Safe to go on: closing must not fail for one job; the log names the job whose file may stay.
          log.warn("could not cancel a job of Strata's own as it quits; its partial file may stay on the host", { host: this.#deps.hostId, job: k, err });
        },
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ownCloseMs)));
    const outcome = await Promise.race([Promise.all(ends), late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      // Safe to go on: closing must not hang on a host that does not answer; the log names the jobs.
      log.warn("Strata's own jobs did not end before the quit; their partial files may stay on the host", { host: this.#deps.hostId, jobs: [...this.#own.keys()] });
    }
    this.jobs.dispose();
    this.#offline?.detachAll();
  }

  /**
   * The offline jobs a previous Strata left on this host, put in the job model: followed when
   * their daemon still runs, told as ended otherwise. Resolves with how many were found.
   */
  recoverOffline(): Promise<number> {
    if (!this.#offline) return Promise.resolve(0);
    return this.#offline.recover({
      adopt: (domain, disk, type, bandwidthBytesPerSec, created) => {
        const options = { requestedBandwidthBytesPerSec: bandwidthBytesPerSec, engine: 'qemu-storage-daemon' as const };
        const job = this.jobs.request(domain, disk, type, options);
        if (created) this.#created.set(job.id, created);
        this.jobs.begin(domain, disk, type, { bandwidthBytesPerSec });
      },
      ended: (domain, disk, type, status, outcome, leftover) => {
        const job = this.jobs.request(domain, disk, type, { requestedBandwidthBytesPerSec: 0, engine: 'qemu-storage-daemon' });
        if (leftover) this.#created.set(job.id, leftover);
        this.jobs.begin(domain, disk, type, { bandwidthBytesPerSec: 0 });
        this.jobs.conclude(domain, disk, status, outcome);
      },
    });
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

  // A copy that ends in a pivot or kept at ready made the file it was asked for; one that failed,
  // was cancelled, or ended out of sight may have left a file nobody uses. Cancelled after ready,
  // that file is a whole image of the disk; whatever the last progress said is no measure of it.
  #leftover(job: Job, reachedReady: boolean): Leftover | null {
    const path = this.#created.get(job.id);
    if (path === undefined || job.type !== 'copy' || job.phase === 'completed') return null;
    return noteLeftover(path, job.phase === 'failed' || !reachedReady, this.#deps.local);
  }

  #ended(job: Job): void {
    const expected = this.#expected.get(job.id);
    if (job.phase === 'completed' && expected) this.#deps.chainChanged?.(job, expected);
    this.#expected.delete(job.id);
    this.#created.delete(job.id);
    this.#deps.domainChanged(job.domain);
    if (!this.#closing) void this.#scheduler.pump().then(() => this.#scheduler.rebalance());
  }

  // Only a destination on this machine can be looked at; a copy's expected chain begins with it.
  #failureReason(job: Job): string | null {
    const destination = job.type === 'copy' && this.#deps.local ? this.#expected.get(job.id)?.after[0] : undefined;
    return destination === undefined ? null : fullDestinationReason(destination);
  }

  async #settleVanished(job: Job): Promise<{ phase: Job['phase']; outcome: string }> {
    let chain: string[] | null = null;
    let running = true;
    try {
      const { detail, disk } = await this.#deps.disk(job.domain, job.disk);
      chain = paths(disk.chain);
      running = detail.state === 'running' || detail.state === 'paused';
    } catch (err) {
      // A transient domain whose QEMU has ended is gone altogether.
      running = !(err instanceof StrataError && err.kind === 'not-found');
      log.debug('the disk of a vanished job cannot be read; its end is judged from what is known', { host: this.#deps.hostId, job: job.id, err });
    }
    return judgeVanished(job, chain, this.#expected.get(job.id), running);
  }
}
