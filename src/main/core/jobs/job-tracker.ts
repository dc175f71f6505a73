// Every block job of one host, from the request (or the queue) to its end: the record of a job's
// life. Polls update progress, libvirt's block-job-2 events end phases at once, a job that
// vanishes without an event is settled by asking the host what happened, and every phase change
// goes through the table in lifecycle.ts. Each change is told once, with what happened (see
// JobTransition); ended jobs are written to the history here, once. What Strata asks libvirt to
// do with a job is decided in job-runner.ts.
import { isFinished, type Job, type JobPhase, type JobTransition, type JobType } from '../../../shared/model.ts';
import type { BlockJobNotice, RawBlockJob } from '../../libvirt/types.ts';
import type { SpaceGuardNote } from '../../../shared/space-guard.ts';
import { log } from '../../log/logger.ts';
import { assertMove, canMove } from './lifecycle.ts';
import { JobPoller } from './job-poller.ts';
import { progressOf } from './progress.ts';
import { JobBook } from './job-book.ts';
import type { JobTrackerDeps } from './tracker-deps.ts';
import { diskKey as key, newTracked, type BeginOptions, type RequestOptions, type Tracked } from './tracked-job.ts';

export type { BeginOptions, QueuedJob, RequestOptions } from './tracked-job.ts';
export type { JobTrackerDeps } from './tracker-deps.ts';

// A vanished job is given this many polls for its end event to arrive before it is settled.
const graceMisses = 3;

const endWords: Record<'completed' | 'failed' | 'cancelled', string> = {
  completed: 'completed',
  failed: 'failed (libvirt gives no reason in its event; the daemon log may say more)',
  cancelled: 'cancelled',
};

export class JobTracker extends JobBook {
  readonly #deps: JobTrackerDeps;
  readonly #now: () => number;
  /** The time stamp of the last job id made here (see #tracked). */
  #lastStamp = 0;
  readonly #poller: JobPoller<Tracked>;

  constructor(deps: JobTrackerDeps) {
    super();
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#poller = new JobPoller<Tracked>({
      intervalMs: deps.pollIntervalMs ?? 200,
      targets: () => [...this.live.values()].filter((t) => t.job.phase !== 'requested'),
      poll: (t) => deps.poll(t.job.domain, t.job.disk),
      found: (t, info) => {
        // An end event may have come while the poll was in flight.
        if (this.live.get(key(t.job.domain, t.job.disk)) !== t) return;
        if (info) this.#update(t, info);
        else this.#missing(t);
      },
      failed: (t, err) => log.debug('poll failed; the reconnect or lifecycle event settles the job', { host: t.job.hostId, job: t.job.id, err }),
      watched: deps.watched,
      ...(deps.pollTimer ? { timer: deps.pollTimer } : {}),
    });
  }

  /** A job that waits for room; `start` requests it (see request()) or fails it (see fail()). */
  enqueue(domain: string, disk: string, type: JobType, options: RequestOptions, start: () => Promise<void>): Job {
    const tracked = this.#tracked(domain, disk, type, 'queued', 'strata', options);
    this.waiting.push({ tracked, start });
    this.#emit(tracked, 'appeared');
    return { ...tracked.job };
  }

  /** Removes a waiting job before it started; returns it cancelled, or undefined. */
  cancelQueued(domain: string, disk: string): Job | undefined {
    const tracked = this.queuedOn(domain, disk);
    if (!tracked) return undefined;
    this.neverRan.add(tracked.job);
    this.#end(tracked, 'cancelled', 'removed from the queue before it started');
    return { ...tracked.job };
  }

  /** Ends every waiting job cancelled with `why`: the queue lives only in this process. */
  dropQueued(why: string): void {
    for (const { tracked } of [...this.waiting]) {
      this.neverRan.add(tracked.job);
      this.#end(tracked, 'cancelled', why);
    }
  }

  /**
   * Strata is about to ask libvirt for a job (a queued one, by `queuedId`, or a new one). A fast
   * job can be ready or over before the call that starts it returns, and its events come first:
   * until begin() or fail(), they are kept for it instead of making an 'external' job of it.
   */
  request(domain: string, disk: string, type: JobType, options: RequestOptions, queuedId?: string): Job {
    const queued = queuedId === undefined ? -1 : this.waiting.findIndex((e) => e.tracked.job.id === queuedId);
    const tracked = queued >= 0 ? this.waiting.splice(queued, 1)[0]!.tracked : this.#tracked(domain, disk, type, 'requested', 'strata', options);
    if (queued >= 0) this.#move(tracked, 'requested', 'leaves the queue');
    tracked.job.type = type;
    if (options.engine) tracked.job.engine = options.engine;
    if (queued >= 0 && options.afterReady !== undefined) tracked.job.afterReady = options.afterReady;
    tracked.early = { ready: false, ended: null };
    this.live.set(key(domain, disk), tracked);
    this.#emit(tracked, 'phase');
    return { ...tracked.job };
  }

  /** A job Strata requested is running in libvirt; starts following it. */
  begin(domain: string, disk: string, type: JobType, options: BeginOptions): Job {
    const k = key(domain, disk);
    let tracked = this.live.get(k);
    if (!tracked || tracked.job.phase !== 'requested') {
      this.request(domain, disk, type, { requestedBandwidthBytesPerSec: options.requestedBandwidthBytesPerSec ?? options.bandwidthBytesPerSec });
      tracked = this.live.get(k)!;
    }
    const job = tracked.job;
    const early = tracked.early;
    tracked.early = null;
    job.type = type;
    job.bandwidthBytesPerSec = options.bandwidthBytesPerSec;
    job.requestedBandwidthBytesPerSec = options.requestedBandwidthBytesPerSec ?? options.bandwidthBytesPerSec;
    if (options.afterReady !== undefined) job.afterReady = options.afterReady;
    if (early?.ended) {
      this.#end(tracked, early.ended, early.outcome ?? this.#outcome(tracked, early.ended));
      return { ...job };
    }
    this.#move(tracked, 'running', 'libvirt started it');
    log.info('job started', { host: job.hostId, job: job.id, type, bandwidthBytesPerSec: job.bandwidthBytesPerSec });
    this.#emit(tracked, 'phase');
    if (early?.ready) this.markReady(tracked);
    this.#poller.schedule();
    return { ...tracked.job };
  }

  /** A requested or queued job could not start: it ends failed with the reason. */
  fail(id: string, reason: string): void {
    const tracked = this.pending(id);
    if (!tracked || (tracked.job.phase !== 'requested' && tracked.job.phase !== 'queued')) return;
    this.neverRan.add(tracked.job);
    this.#end(tracked, 'failed', reason);
  }

  /** What a poll or a scan found on a disk: starts tracking jobs started elsewhere (virsh). */
  observe(domain: string, disk: string, info: RawBlockJob | null): void {
    const k = key(domain, disk);
    let tracked = this.live.get(k);
    if (tracked?.job.phase === 'requested') return;
    if (!info) {
      if (tracked) this.#missing(tracked);
      return;
    }
    if (!tracked) {
      if (this.justEnded(k, info.type, this.#now())) return;
      tracked = this.#track(domain, disk, info.type);
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
    if (changed || !tracked.told) this.#emit(tracked, 'progress');
    this.#poller.schedule();
  }

  /** libvirt's block-job-2 event: ends a phase at once. */
  notice(n: BlockJobNotice): void {
    const k = key(n.domain, n.disk);
    // An end repeated for a job that just ended (the second of libvirt's two events for it) is
    // not a new job that another client ran.
    if (!this.live.has(k) && n.status !== 'ready' && this.justEnded(k, n.type, this.#now())) return;
    const tracked = this.live.get(k) ?? this.#track(n.domain, n.disk, n.type);
    if (tracked.early) {
      if (n.status === 'ready') tracked.early.ready = true;
      else tracked.early.ended = n.status;
      return;
    }
    if (n.status === 'ready') this.markReady(tracked);
    else this.#end(tracked, n.status, this.#outcome(tracked, n.status));
  }

  /**
   * Ready, from the event or (after a reconnect) from the live XML's <mirror ready='yes'>. A ready
   * seen again (a repeated event, a scan during a pivot) changes nothing.
   */
  markReady(target: Tracked | { domain: string; disk: string }, options: { reconnected?: boolean } = {}): void {
    const tracked = 'job' in target ? target : this.live.get(key(target.domain, target.disk));
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
    this.#emit(tracked, 'ready');
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
    const tracked = this.live.get(key(domain, disk));
    if (!tracked || tracked.before === null || (tracked.job.phase !== 'pivoting' && tracked.job.phase !== 'aborting')) return;
    const back = tracked.before;
    tracked.before = null;
    tracked.keeping = false;
    this.#move(tracked, back, 'libvirt refused the request');
    this.#emit(tracked, back === 'ready' ? 'ready' : 'phase');
  }

  #leave(domain: string, disk: string, to: 'pivoting' | 'aborting', why: string): Tracked | undefined {
    const tracked = this.live.get(key(domain, disk));
    if (!tracked) return undefined;
    tracked.before = tracked.job.phase;
    this.#move(tracked, to, why);
    this.#emit(tracked, 'phase');
    return tracked;
  }

  #outcome(tracked: Tracked, status: 'completed' | 'failed' | 'cancelled'): string {
    if (status === 'completed' && tracked.job.phase === 'pivoting') return 'completed: the disk now uses the new image';
    const why = status === 'failed' ? this.#deps.failureReason?.({ ...tracked.job }) : null;
    return why ? `failed: ${why}` : endWords[status];
  }

  /** The space guard's word on a running job (health/space-guard.ts): told in its events, kept in its history. */
  guardNote(domain: string, disk: string, note: SpaceGuardNote): void {
    const tracked = this.live.get(key(domain, disk));
    if (!tracked) return;
    tracked.job.spaceGuard = note;
    this.#emit(tracked, 'progress');
  }

  setBandwidth(domain: string, disk: string, bandwidthBytesPerSec: number, requested?: number): Job | undefined {
    const tracked = this.live.get(key(domain, disk));
    if (!tracked) return undefined;
    tracked.job.bandwidthBytesPerSec = bandwidthBytesPerSec;
    if (requested !== undefined) tracked.job.requestedBandwidthBytesPerSec = requested;
    this.#emit(tracked, 'progress');
    return { ...tracked.job };
  }

  /**
   * An ended job's record changed after its end (its leftover removed or reused): the disk's last
   * ending shows the change, the history keeps it, and watchers hear of it.
   */
  async amend(job: Job): Promise<void> {
    const k = key(job.domain, job.disk);
    if (this.finished.get(k)?.id === job.id) this.finished.set(k, { ...job });
    this.#deps.emit({ ...job }, 'amended');
    await this.#deps.rerecord?.({ ...job });
  }

  /**
   * The engine that runs a job Strata started itself (an offline job's qemu-storage-daemon) tells
   * its end, with its own words: libvirt has no event for it.
   */
  conclude(domain: string, disk: string, status: 'completed' | 'failed' | 'cancelled', outcome: string): void {
    const tracked = this.live.get(key(domain, disk));
    if (!tracked) return;
    if (tracked.early) {
      tracked.early.ended = status;
      tracked.early.outcome = outcome;
      return;
    }
    this.#end(tracked, status, outcome);
  }

  /**
   * Settles a job at once, without the grace period: its end event is known to be lost. Not an
   * offline job: libvirt does not see it, and its own engine tells its end (see conclude()).
   */
  settleNow(domain: string, disk: string): void {
    const tracked = this.live.get(key(domain, disk));
    if (!tracked || tracked.job.phase === 'requested' || tracked.job.engine === 'qemu-storage-daemon' || tracked.job.engine === 'qemu-img') return;
    tracked.missing = graceMisses - 1;
    this.#missing(tracked);
  }

  /** Polling resumes when someone starts watching again. */
  wake(): void {
    this.#poller.schedule();
  }

  dispose(): void {
    this.#poller.dispose();
  }

  #tracked(domain: string, disk: string, type: JobType, phase: JobPhase, origin: Job['origin'], options?: RequestOptions): Tracked {
    // A burst of requests queues several jobs of one disk within a millisecond: the id's stamp
    // moves on by a millisecond when it would repeat, so no two jobs of a host share an id.
    const now = Math.max(this.#now(), this.#lastStamp + 1);
    this.#lastStamp = now;
    const tracked = newTracked({ hostId: this.#deps.hostId, domain, disk, type, phase, origin, now });
    if (options) {
      tracked.job.requestedBandwidthBytesPerSec = options.requestedBandwidthBytesPerSec;
      tracked.job.afterReady = options.afterReady ?? null;
      if (options.engine) tracked.job.engine = options.engine;
    }
    return tracked;
  }

  /** A job found running in libvirt (started elsewhere, or seen again after a reconnect). */
  #track(domain: string, disk: string, type: JobType): Tracked {
    const tracked = this.#tracked(domain, disk, type, 'running', 'external');
    this.live.set(key(domain, disk), tracked);
    return tracked;
  }

  #missing(tracked: Tracked): void {
    tracked.missing += 1;
    if (tracked.missing < graceMisses) return;
    const k = key(tracked.job.domain, tracked.job.disk);
    this.live.delete(k);
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
    if (this.live.get(k) === tracked) this.live.delete(k);
    const queued = this.waiting.findIndex((e) => e.tracked === tracked);
    if (queued >= 0) this.waiting.splice(queued, 1);
    const now = this.#now();
    job.phase = phase;
    job.outcome = outcome;
    job.endedAt = now;
    job.updatedAt = now;
    job.etaSeconds = null;
    tracked.early = null;
    if (phase === 'completed' || tracked.reachedReady) job.progress = 1;
    job.leftover = this.#deps.leftover?.({ ...job }, tracked.reachedReady) ?? null;
    this.finished.set(k, job);
    log[phase === 'completed' || phase === 'cancelled' ? 'info' : 'warn'](`job ${phase}`, { host: job.hostId, job: job.id, outcome });
    this.#emit(tracked, 'ended');
    this.#deps.record?.({ ...job });
    this.#deps.ended({ ...job });
  }

  // A job's first event says it appeared, whatever moved it; a first event that is its ready or
  // its end says that instead (a job seen only by its ready or end event).
  #emit(tracked: Tracked, transition: JobTransition): void {
    const told = tracked.told || transition === 'ready' || transition === 'ended' ? transition : 'appeared';
    tracked.told = true;
    this.#deps.emit({ ...tracked.job }, told);
  }
}
