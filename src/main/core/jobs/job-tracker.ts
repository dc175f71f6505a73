// Every block job of one host, from the request (or the queue) to its end: the one owner of a
// job's life. Polls update progress, libvirt's block-job-2 events end phases at once, a job that
// vanishes without an event is settled by asking the host what happened, and every phase change
// goes through the table in lifecycle.ts. Ended jobs are written to the history here, once.
import { isFinished, type AfterReady, type Job, type JobPhase, type JobType, type Leftover } from '../../../shared/model.ts';
import type { BlockJobNotice, RawBlockJob } from '../../libvirt/types.ts';
import { log } from '../../log/logger.ts';
import { assertMove, canMove } from './lifecycle.ts';
import { progressOf } from './progress.ts';
import { RateEstimator } from './rate.ts';

export interface JobTrackerDeps {
  hostId: string;
  poll(domain: string, disk: string): Promise<RawBlockJob | null>;
  /** Decides how a job that disappeared without an event ended (e.g. by reading the chain). */
  settleVanished(job: Job): Promise<{ phase: JobPhase; outcome: string }>;
  emit(job: Job): void;
  /** Keeps an ended job in the history; called once per job. */
  record?(job: Job): void;
  /** Called once when a job has ended, so the host can re-read the disk's chain. */
  ended(job: Job): void;
  /** Why a job libvirt reports failed did fail, when the host can tell (the event cannot). */
  failureReason?(job: Job): string | null;
  /**
   * The file an ended job created and left unused (a failed or cancelled copy), if any;
   * `reachedReady`: the job was in sync at some point, so what it wrote is a whole image.
   */
  leftover?(job: Job, reachedReady: boolean): Leftover | null;
  /** Called when a copy or active commit reaches ready, so the host can pivot or keep. */
  ready?(job: Job): void;
  watched(): boolean;
  now?: () => number;
  /** How often a running job is polled: keeps shown progress at most this old. */
  pollIntervalMs?: number;
}

/** What libvirt said about a job while the call that starts it had not returned yet. */
interface Early {
  ready: boolean;
  ended: 'completed' | 'failed' | 'cancelled' | null;
}

interface Tracked {
  job: Job;
  rate: RateEstimator;
  /** Polls that found no job while no end event had come yet. */
  missing: number;
  /** Strata aborted a ready mirror on purpose to keep the current chain: a success. */
  keeping: boolean;
  /** A poll or scan has reported this job at least once. */
  observed: boolean;
  /** The phase an abort or pivot left, to go back to if libvirt refuses it. */
  before: JobPhase | null;
  /** Events seen while the job was 'requested'. */
  early: Early | null;
  /**
   * libvirt reported the job ready once: its new image was in sync then, and stays a whole image
   * whatever the counters say afterwards (a poll sent before the ready event can answer after it).
   */
  reachedReady: boolean;
}

/** A job waiting for room on the host, with what starts it. */
export interface QueuedJob {
  job: Job;
  start(): Promise<void>;
}

export interface RequestOptions {
  requestedBandwidthBytesPerSec: number;
  afterReady?: AfterReady | null;
}

export interface BeginOptions {
  bandwidthBytesPerSec: number;
  requestedBandwidthBytesPerSec?: number;
  afterReady?: AfterReady | null;
}

const key = (domain: string, disk: string): string => `${domain}/${disk}`;

/** A job as it is first known: nothing measured yet. Its id names the host, disk and start time. */
function newJob(fields: Pick<Job, 'hostId' | 'domain' | 'disk' | 'type' | 'phase' | 'origin'> & { now: number; requested?: number }): Job {
  const { now, requested = 0, ...known } = fields;
  return {
    ...known,
    id: `${known.hostId}/${known.domain}/${known.disk}@${now}`,
    cur: 0,
    end: 0,
    progress: null,
    bandwidthBytesPerSec: 0,
    requestedBandwidthBytesPerSec: requested,
    afterReady: null,
    rateBytesPerSec: null,
    etaSeconds: null,
    startedAt: now,
    updatedAt: now,
    endedAt: null,
    outcome: null,
    leftover: null,
  };
}

// A vanished job is given this many polls for its end event to arrive before it is settled.
const graceMisses = 3;

const lingerMs = 2000;

const endWords: Record<'completed' | 'failed' | 'cancelled', string> = {
  completed: 'completed',
  failed: 'failed (libvirt gives no reason in its event; the daemon log may say more)',
  cancelled: 'cancelled',
};

export class JobTracker {
  readonly #deps: JobTrackerDeps;
  readonly #now: () => number;
  readonly #interval: number;
  /** Jobs being started or with a libvirt job behind them, one per disk. */
  readonly #active = new Map<string, Tracked>();
  /** Waiting jobs, first come first served. */
  readonly #queue: { tracked: Tracked; start(): Promise<void> }[] = [];
  readonly #finished = new Map<string, Job>();
  /** Ended jobs that never had a libvirt job (cancelled in the queue, refused at the start). */
  readonly #neverRan = new WeakSet<Job>();
  /** The time stamp of the last job id made here (see #tracked). */
  #lastStamp = 0;
  #timer: NodeJS.Timeout | null = null;
  #polling = false;
  #disposed = false;

  constructor(deps: JobTrackerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#interval = deps.pollIntervalMs ?? 200;
  }

  /** Jobs with a libvirt job behind them (running, ready, pivoting, aborting). */
  running(): Job[] {
    return [...this.#active.values()].filter((t) => t.job.phase !== 'requested').map((t) => ({ ...t.job }));
  }

  /** Jobs libvirt is being asked to start: they take a place on the host like running ones. */
  starting(): Job[] {
    return [...this.#active.values()].filter((t) => t.job.phase === 'requested').map((t) => ({ ...t.job }));
  }

  queued(): QueuedJob[] {
    return this.#queue.map((e) => ({ job: { ...e.tracked.job }, start: e.start }));
  }

  /** Running and starting jobs, the queue in order, then the last ended job of each idle disk. */
  list(): Job[] {
    const active = [...this.#active.values()].map((t) => ({ ...t.job }));
    const queued = this.#queue.map((e) => ({ ...e.tracked.job }));
    const busy = new Set([...this.#active.keys(), ...this.#queue.map((e) => key(e.tracked.job.domain, e.tracked.job.disk))]);
    const finished = [...this.#finished.entries()].filter(([k]) => !busy.has(k)).map(([, j]) => ({ ...j }));
    return [...active, ...queued, ...finished];
  }

  /** The disk's job that has a libvirt job behind it, if any. */
  active(domain: string, disk: string): Job | undefined {
    const tracked = this.#active.get(key(domain, disk));
    return tracked && tracked.job.phase !== 'requested' ? { ...tracked.job } : undefined;
  }

  /** Whatever occupies the disk: a job starting, running or waiting in the queue. */
  occupying(domain: string, disk: string): Job | undefined {
    const tracked = this.#active.get(key(domain, disk)) ?? this.#queue.find((e) => e.tracked.job.domain === domain && e.tracked.job.disk === disk)?.tracked;
    return tracked ? { ...tracked.job } : undefined;
  }

  /** A job that waits for room; `start` requests it (see request()) or fails it (see fail()). */
  enqueue(domain: string, disk: string, type: JobType, options: RequestOptions, start: () => Promise<void>): Job {
    const tracked = this.#tracked(domain, disk, type, 'queued', 'strata');
    tracked.job.requestedBandwidthBytesPerSec = options.requestedBandwidthBytesPerSec;
    tracked.job.afterReady = options.afterReady ?? null;
    this.#queue.push({ tracked, start });
    this.#emit(tracked);
    return { ...tracked.job };
  }

  /** Removes a waiting job before it started; returns it cancelled, or undefined. */
  cancelQueued(domain: string, disk: string): Job | undefined {
    const entry = this.#queue.find((e) => e.tracked.job.domain === domain && e.tracked.job.disk === disk);
    if (!entry) return undefined;
    this.#neverRan.add(entry.tracked.job);
    this.#end(entry.tracked, 'cancelled', 'removed from the queue before it started');
    return { ...entry.tracked.job };
  }

  /**
   * Strata is about to ask libvirt for a job (a queued one, by `queuedId`, or a new one). A fast
   * job can be ready or over before the call that starts it returns, and its events come first:
   * until begin() or fail(), they are kept for it instead of making an 'external' job of it.
   */
  request(domain: string, disk: string, type: JobType, options: RequestOptions, queuedId?: string): Job {
    const k = key(domain, disk);
    const queued = queuedId === undefined ? -1 : this.#queue.findIndex((e) => e.tracked.job.id === queuedId);
    let tracked: Tracked;
    if (queued >= 0) {
      tracked = this.#queue.splice(queued, 1)[0]!.tracked;
      this.#move(tracked, 'requested', 'leaves the queue');
    } else {
      tracked = this.#tracked(domain, disk, type, 'requested', 'strata');
      tracked.job.requestedBandwidthBytesPerSec = options.requestedBandwidthBytesPerSec;
      tracked.job.afterReady = options.afterReady ?? null;
    }
    tracked.job.type = type;
    tracked.early = { ready: false, ended: null };
    this.#active.set(k, tracked);
    this.#emit(tracked);
    return { ...tracked.job };
  }

  /** A job Strata requested is running in libvirt; starts following it. */
  begin(domain: string, disk: string, type: JobType, options: BeginOptions): Job {
    const k = key(domain, disk);
    let tracked = this.#active.get(k);
    if (!tracked || tracked.job.phase !== 'requested') {
      this.request(domain, disk, type, { requestedBandwidthBytesPerSec: options.requestedBandwidthBytesPerSec ?? options.bandwidthBytesPerSec });
      tracked = this.#active.get(k)!;
    }
    const job = tracked.job;
    const early = tracked.early;
    tracked.early = null;
    job.type = type;
    job.bandwidthBytesPerSec = options.bandwidthBytesPerSec;
    job.requestedBandwidthBytesPerSec = options.requestedBandwidthBytesPerSec ?? options.bandwidthBytesPerSec;
    if (options.afterReady !== undefined) job.afterReady = options.afterReady;
    if (early?.ended) {
      this.#end(tracked, early.ended, this.#outcome(tracked, early.ended));
      return { ...job };
    }
    this.#move(tracked, 'running', 'libvirt started it');
    log.info('job started', { host: job.hostId, job: job.id, type, bandwidthBytesPerSec: job.bandwidthBytesPerSec });
    this.#emit(tracked);
    if (early?.ready) this.markReady(tracked);
    this.#schedule();
    return { ...tracked.job };
  }

  /** A requested or queued job could not start: it ends failed with the reason. */
  fail(id: string, reason: string): void {
    const tracked = [...this.#active.values(), ...this.#queue.map((e) => e.tracked)].find((t) => t.job.id === id);
    if (!tracked || (tracked.job.phase !== 'requested' && tracked.job.phase !== 'queued')) return;
    this.#neverRan.add(tracked.job);
    this.#end(tracked, 'failed', reason);
  }

  /** What a poll or a scan found on a disk: starts tracking jobs started elsewhere (virsh). */
  observe(domain: string, disk: string, info: RawBlockJob | null): void {
    const k = key(domain, disk);
    let tracked = this.#active.get(k);
    if (tracked?.job.phase === 'requested') return;
    if (!info) {
      if (tracked) this.#missing(tracked);
      return;
    }
    if (!tracked) {
      if (this.#justEnded(k, info.type)) return;
      tracked = this.#track(domain, disk, info.type, 'external');
    }
    this.#update(tracked, info);
  }

  #update(tracked: Tracked, info: RawBlockJob): void {
    const job = tracked.job;
    // A job started elsewhere asked for the limit it had when first seen: a budget may lower it
    // for a while, and lifting the budget gives it back.
    if (!tracked.observed && job.origin === 'external') job.requestedBandwidthBytesPerSec = info.bandwidthBytesPerSec;
    tracked.observed = true;
    const at = this.#now();
    tracked.missing = 0;
    tracked.rate.sample(at, info.cur, info.end);
    const changed =
      job.cur !== info.cur || job.end !== info.end || job.bandwidthBytesPerSec !== info.bandwidthBytesPerSec || job.type !== info.type;
    job.type = info.type;
    job.cur = info.cur;
    job.end = info.end;
    job.progress = tracked.reachedReady ? 1 : progressOf(info.cur, info.end);
    job.bandwidthBytesPerSec = info.bandwidthBytesPerSec;
    job.rateBytesPerSec = tracked.rate.bytesPerSec;
    job.etaSeconds = tracked.reachedReady ? null : tracked.rate.etaSeconds(info.cur, info.end);
    job.updatedAt = at;
    if (changed) this.#emit(tracked);
    this.#schedule();
  }

  /** libvirt's block-job-2 event: ends a phase at once. */
  notice(n: BlockJobNotice): void {
    const k = key(n.domain, n.disk);
    // An end repeated for a job that just ended (the second of libvirt's two events for it) is
    // not a new job that another client ran.
    if (!this.#active.has(k) && n.status !== 'ready' && this.#justEnded(k, n.type)) return;
    const tracked = this.#active.get(k) ?? this.#track(n.domain, n.disk, n.type, 'external');
    if (tracked.early) {
      if (n.status === 'ready') tracked.early.ready = true;
      else tracked.early.ended = n.status;
      return;
    }
    if (n.status === 'ready') {
      this.markReady(tracked);
      return;
    }
    this.#end(tracked, n.status, this.#outcome(tracked, n.status));
  }

  /**
   * Ready, from the event or (after a reconnect) from the live XML's <mirror ready='yes'>. A ready
   * seen again (a repeated event, a scan during a pivot) changes nothing.
   */
  markReady(target: Tracked | { domain: string; disk: string }, options: { reconnected?: boolean } = {}): void {
    const tracked = 'job' in target ? target : this.#active.get(key(target.domain, target.disk));
    if (!tracked) return;
    // A pivot whose call died with the connection, found still ready after the reconnect, did
    // not happen: the job is ready again, for the user (or afterReady) to pivot once more.
    const pivotLost = options.reconnected === true && tracked.job.phase === 'pivoting';
    if (tracked.job.phase !== 'running' && !pivotLost) return;
    tracked.before = null;
    tracked.reachedReady = true;
    this.#move(tracked, 'ready', pivotLost ? 'the pivot did not happen before the connection died' : 'libvirt reports it ready');
    tracked.job.progress = 1;
    tracked.job.etaSeconds = null;
    this.#emit(tracked);
    this.#deps.ready?.({ ...tracked.job });
  }

  /** Strata asks libvirt to switch the disk to the job's new image. */
  pivoting(domain: string, disk: string): void {
    this.#leave(domain, disk, 'pivoting', 'pivot requested');
  }

  /**
   * Strata asks libvirt to abort the job; `keeping`: the abort keeps the current chain after
   * ready on purpose, which is a success, not a cancel.
   */
  aborting(domain: string, disk: string, options: { keeping?: boolean } = {}): void {
    const tracked = this.#leave(domain, disk, 'aborting', options.keeping ? 'keep the current chain' : 'abort requested');
    if (tracked && options.keeping) tracked.keeping = true;
  }

  /** libvirt refused the pivot or abort: the job is where it was before. */
  refused(domain: string, disk: string): void {
    const tracked = this.#active.get(key(domain, disk));
    if (!tracked || tracked.before === null || (tracked.job.phase !== 'pivoting' && tracked.job.phase !== 'aborting')) return;
    const back = tracked.before;
    tracked.before = null;
    tracked.keeping = false;
    this.#move(tracked, back, 'libvirt refused the request');
    this.#emit(tracked);
  }

  #leave(domain: string, disk: string, to: 'pivoting' | 'aborting', why: string): Tracked | undefined {
    const tracked = this.#active.get(key(domain, disk));
    if (!tracked) return undefined;
    tracked.before = tracked.job.phase;
    this.#move(tracked, to, why);
    this.#emit(tracked);
    return tracked;
  }

  #outcome(tracked: Tracked, status: 'completed' | 'failed' | 'cancelled'): string {
    if (status === 'completed' && tracked.job.phase === 'pivoting') return 'completed: the disk now uses the new image';
    const why = status === 'failed' ? this.#deps.failureReason?.({ ...tracked.job }) : null;
    return why ? `failed: ${why}` : endWords[status];
  }

  setBandwidth(domain: string, disk: string, bandwidthBytesPerSec: number, requested?: number): Job | undefined {
    const tracked = this.#active.get(key(domain, disk));
    if (!tracked) return undefined;
    tracked.job.bandwidthBytesPerSec = bandwidthBytesPerSec;
    if (requested !== undefined) tracked.job.requestedBandwidthBytesPerSec = requested;
    this.#emit(tracked);
    return { ...tracked.job };
  }

  /**
   * An ended job's record changed after its end (its leftover removed or reused): the disk's last
   * ending shows the change, and watchers hear of it.
   */
  amendEnded(job: Job): void {
    const k = key(job.domain, job.disk);
    if (this.#finished.get(k)?.id === job.id) this.#finished.set(k, { ...job });
    this.#deps.emit({ ...job });
  }

  /** Settles a job at once, without the grace period: its end event is known to be lost. */
  settleNow(domain: string, disk: string): void {
    const tracked = this.#active.get(key(domain, disk));
    if (!tracked || tracked.job.phase === 'requested') return;
    tracked.missing = graceMisses - 1;
    this.#missing(tracked);
  }

  /** Polling resumes when someone starts watching again. */
  wake(): void {
    this.#schedule();
  }

  dispose(): void {
    this.#disposed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #tracked(domain: string, disk: string, type: JobType, phase: JobPhase, origin: Job['origin']): Tracked {
    // A burst of requests queues several jobs of one disk within a millisecond: the id's stamp
    // moves on by a millisecond when it would repeat, so no two jobs of a host share an id.
    const now = Math.max(this.#now(), this.#lastStamp + 1);
    this.#lastStamp = now;
    const job = newJob({ hostId: this.#deps.hostId, domain, disk, type, phase, origin, now });
    return { job, rate: new RateEstimator(), missing: 0, keeping: false, observed: false, before: null, early: null, reachedReady: false };
  }

  /** A job found running in libvirt (started elsewhere, or seen again after a reconnect). */
  #track(domain: string, disk: string, type: JobType, origin: Job['origin']): Tracked {
    const tracked = this.#tracked(domain, disk, type, 'running', origin);
    this.#active.set(key(domain, disk), tracked);
    return tracked;
  }

  // libvirt 9.0.0 (Debian 12) can show a job for a moment after its end event (fixed in 9.1);
  // such a sighting must not resurrect the job as a new one started elsewhere.
  #justEnded(k: string, type: JobType): boolean {
    const last = this.#finished.get(k);
    return !!last && !this.#neverRan.has(last) && last.type === type && last.endedAt !== null && this.#now() - last.endedAt < lingerMs;
  }

  #missing(tracked: Tracked): void {
    tracked.missing += 1;
    if (tracked.missing < graceMisses) return;
    const k = key(tracked.job.domain, tracked.job.disk);
    this.#active.delete(k);
    this.#deps.settleVanished({ ...tracked.job }).then(
      ({ phase, outcome }) => this.#end(tracked, phase, outcome),
      (err: unknown) => this.#end(tracked, 'failed', `ended without an event, and its outcome is unknown (${String(err)})`),
    );
  }

  #move(tracked: Tracked, to: JobPhase, why: string): void {
    assertMove(tracked.job.phase, to, `${tracked.job.id}: ${why}`);
    tracked.job.phase = to;
    tracked.job.updatedAt = this.#now();
  }

  #end(tracked: Tracked, phase: JobPhase, outcome: string): void {
    const job = tracked.job;
    if (isFinished(job)) return;
    if (tracked.keeping && phase === 'cancelled') {
      phase = 'completed';
      outcome = 'completed: the disk kept its current chain (no pivot)';
    }
    if (!canMove(job.phase, phase)) {
      // An end libvirt reports is a fact, whatever Strata thought the phase was: record it, and
      // log the gap in the table as the bug it is.
      log.error('job ended from a phase the lifecycle does not expect', { host: job.hostId, job: job.id, from: job.phase, to: phase });
    }
    const k = key(job.domain, job.disk);
    if (this.#active.get(k) === tracked) this.#active.delete(k);
    const queued = this.#queue.findIndex((e) => e.tracked === tracked);
    if (queued >= 0) this.#queue.splice(queued, 1);
    const now = this.#now();
    job.phase = phase;
    job.outcome = outcome;
    job.endedAt = now;
    job.updatedAt = now;
    job.etaSeconds = null;
    tracked.early = null;
    if (phase === 'completed' || tracked.reachedReady) job.progress = 1;
    job.leftover = this.#deps.leftover?.({ ...job }, tracked.reachedReady) ?? null;
    this.#finished.set(k, job);
    log[phase === 'completed' || phase === 'cancelled' ? 'info' : 'warn'](`job ${phase}`, { host: job.hostId, job: job.id, outcome });
    this.#emit(tracked);
    this.#deps.record?.({ ...job });
    this.#deps.ended({ ...job });
  }

  #emit(tracked: Tracked): void {
    this.#deps.emit({ ...tracked.job });
  }

  #schedule(): void {
    if (this.#disposed || this.#timer || this.#polling || this.running().length === 0 || !this.#deps.watched()) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#pollAll();
    }, this.#interval);
  }

  async #pollAll(): Promise<void> {
    this.#polling = true;
    try {
      await Promise.all(
        [...this.#active.values()]
          .filter((t) => t.job.phase !== 'requested')
          .map(async (t) => {
            const { domain, disk } = t.job;
            try {
              const info = await this.#deps.poll(domain, disk);
              // An end event may have come while the poll was in flight.
              if (this.#active.get(key(domain, disk)) !== t) return;
              if (info) this.#update(t, info);
              else this.#missing(t);
            } catch (err) {
              // A failed poll (daemon restarting, domain gone) is not an outcome: the host's
              // reconnect or the lifecycle event settles the job.
              log.debug('poll failed; the reconnect or lifecycle event settles the job', { host: t.job.hostId, job: t.job.id, err });
            }
          }),
      );
    } finally {
      this.#polling = false;
    }
    this.#schedule();
  }
}
