// Every block job of one host, from the first event or poll to its end. One record per disk is
// the single source of truth: polls update progress, libvirt's block-job-2 events end phases at
// once, and a job that vanishes without an event is settled by asking the host what happened.
import { isFinished, type AfterReady, type Job, type JobPhase, type JobType } from '../../../shared/model.ts';
import type { BlockJobNotice, RawBlockJob } from '../../libvirt/types.ts';
import { progressOf } from './progress.ts';
import { RateEstimator } from './rate.ts';

export interface JobTrackerDeps {
  hostId: string;
  poll(domain: string, disk: string): Promise<RawBlockJob | null>;
  /** Decides how a job that disappeared without an event ended (e.g. by reading the chain). */
  settleVanished(job: Job): Promise<{ phase: JobPhase; outcome: string }>;
  emit(job: Job): void;
  /** Called once when a job has ended, so the host can re-read the disk's chain. */
  ended(job: Job): void;
  /** Called when a copy or active commit reaches ready, so the host can pivot or keep. */
  ready?(job: Job): void;
  watched(): boolean;
  now?: () => number;
  /** How often a running job is polled: keeps shown progress at most this old. */
  pollIntervalMs?: number;
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
}

export interface BeginOptions {
  bandwidthBytesPerSec: number;
  requestedBandwidthBytesPerSec?: number;
  afterReady?: AfterReady | null;
  /** Keeps the id a queued job was announced with. */
  id?: string;
}

const key = (domain: string, disk: string): string => `${domain}/${disk}`;

/** A job as it is first known: nothing measured yet. Its id names the host, disk and start time. */
export function newJob(fields: Pick<Job, 'hostId' | 'domain' | 'disk' | 'type' | 'phase' | 'origin'> & { now: number; requested?: number }): Job {
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
  };
}

/** What libvirt said about a job Strata is starting, before begin() could track it. */
interface Early {
  ready: boolean;
  ended: 'completed' | 'failed' | 'cancelled' | null;
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
  readonly #active = new Map<string, Tracked>();
  readonly #finished = new Map<string, Job>();
  /** Disks Strata is starting a job on (see expect()). */
  readonly #starting = new Map<string, Early>();
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
    return [...this.#active.values()].map((t) => ({ ...t.job }));
  }

  /** Running jobs, then the last finished job of each disk that has no running one. */
  list(): Job[] {
    const active = [...this.#active.values()].map((t) => t.job);
    const finished = [...this.#finished.entries()].filter(([k]) => !this.#active.has(k)).map(([, j]) => j);
    return [...active, ...finished];
  }

  active(domain: string, disk: string): Job | undefined {
    return this.#active.get(key(domain, disk))?.job;
  }

  /**
   * Strata is about to start a job on the disk. A fast job can be ready or over before the call
   * that starts it returns, and its events come first: until begin() (or unexpect()), events and
   * sightings of the disk's job are kept for it instead of making an 'external' job of it.
   */
  expect(domain: string, disk: string): void {
    this.#starting.set(key(domain, disk), { ready: false, ended: null });
  }

  /** The start failed: nothing is coming. */
  unexpect(domain: string, disk: string): void {
    this.#starting.delete(key(domain, disk));
  }

  /** A job Strata just started; known before the first poll. */
  begin(domain: string, disk: string, type: JobType, options: BeginOptions): Job {
    const k = key(domain, disk);
    const early = this.#starting.get(k);
    this.#starting.delete(k);
    const tracked = this.#track(domain, disk, type, 'strata');
    const job = tracked.job;
    if (options.id) job.id = options.id;
    job.bandwidthBytesPerSec = options.bandwidthBytesPerSec;
    job.requestedBandwidthBytesPerSec = options.requestedBandwidthBytesPerSec ?? options.bandwidthBytesPerSec;
    job.afterReady = options.afterReady ?? null;
    this.#emit(tracked);
    if (early?.ended) this.#end(tracked, early.ended, this.#outcome(tracked, early.ended));
    else if (early?.ready) this.markReady(tracked);
    this.#schedule();
    return { ...tracked.job };
  }

  /** What a poll or a scan found on a disk: starts tracking jobs started elsewhere (virsh). */
  observe(domain: string, disk: string, info: RawBlockJob | null): void {
    const k = key(domain, disk);
    let tracked = this.#active.get(k);
    if (!info) {
      if (tracked) this.#missing(tracked);
      return;
    }
    if (!tracked) {
      if (this.#starting.has(k) || this.#justEnded(k, info.type)) return;
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
    job.progress = progressOf(info.cur, info.end);
    job.bandwidthBytesPerSec = info.bandwidthBytesPerSec;
    job.rateBytesPerSec = tracked.rate.bytesPerSec;
    job.etaSeconds = tracked.rate.etaSeconds(info.cur, info.end);
    job.updatedAt = at;
    if (changed) this.#emit(tracked);
    this.#schedule();
  }

  /** libvirt's block-job-2 event: ends a phase at once. */
  notice(n: BlockJobNotice): void {
    const k = key(n.domain, n.disk);
    const early = this.#active.has(k) ? undefined : this.#starting.get(k);
    if (early) {
      if (n.status === 'ready') early.ready = true;
      else early.ended = n.status;
      return;
    }
    const tracked = this.#active.get(k) ?? this.#track(n.domain, n.disk, n.type, 'external');
    if (n.status === 'ready') {
      this.markReady(tracked);
      return;
    }
    this.#end(tracked, n.status, this.#outcome(tracked, n.status));
  }

  /** Ready, from the event or (after a reconnect) from the live XML's <mirror ready='yes'>. */
  markReady(target: Tracked | { domain: string; disk: string }): void {
    const tracked = 'job' in target ? target : this.#active.get(key(target.domain, target.disk));
    if (!tracked || tracked.job.phase !== 'running') return;
    tracked.job.phase = 'ready';
    tracked.job.progress = 1;
    tracked.job.etaSeconds = null;
    tracked.job.updatedAt = this.#now();
    this.#emit(tracked);
    this.#deps.ready?.({ ...tracked.job });
  }

  /** The abort that follows is Strata keeping the current chain after ready, not a cancel. */
  markKeeping(domain: string, disk: string): void {
    const tracked = this.#active.get(key(domain, disk));
    if (!tracked) return;
    tracked.keeping = true;
    this.setPhase(domain, disk, 'aborting');
  }

  #outcome(tracked: Tracked, status: 'completed' | 'failed' | 'cancelled'): string {
    if (status === 'completed' && tracked.job.phase === 'pivoting') return 'completed: the disk now uses the new image';
    return endWords[status];
  }

  setPhase(domain: string, disk: string, phase: JobPhase): void {
    const tracked = this.#active.get(key(domain, disk));
    if (!tracked) return;
    tracked.job.phase = phase;
    tracked.job.updatedAt = this.#now();
    this.#emit(tracked);
  }

  setBandwidth(domain: string, disk: string, bandwidthBytesPerSec: number, requested?: number): Job | undefined {
    const tracked = this.#active.get(key(domain, disk));
    if (!tracked) return undefined;
    tracked.job.bandwidthBytesPerSec = bandwidthBytesPerSec;
    if (requested !== undefined) tracked.job.requestedBandwidthBytesPerSec = requested;
    this.#emit(tracked);
    return { ...tracked.job };
  }

  /** Settles a job at once, without the grace period: its end event is known to be lost. */
  settleNow(domain: string, disk: string): void {
    const tracked = this.#active.get(key(domain, disk));
    if (!tracked) return;
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

  #track(domain: string, disk: string, type: JobType, origin: Job['origin']): Tracked {
    const job = newJob({ hostId: this.#deps.hostId, domain, disk, type, phase: 'running', origin, now: this.#now() });
    const tracked: Tracked = { job, rate: new RateEstimator(), missing: 0, keeping: false, observed: false };
    this.#active.set(key(domain, disk), tracked);
    return tracked;
  }

  // libvirt 9.0.0 (Debian 12) can show a job for a moment after its end event (fixed in 9.1);
  // such a sighting must not resurrect the job as a new one started elsewhere.
  #justEnded(k: string, type: JobType): boolean {
    const last = this.#finished.get(k);
    return !!last && last.type === type && last.endedAt !== null && this.#now() - last.endedAt < lingerMs;
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

  #end(tracked: Tracked, phase: JobPhase, outcome: string): void {
    const job = tracked.job;
    if (isFinished(job)) return;
    if (tracked.keeping && phase === 'cancelled') {
      phase = 'completed';
      outcome = 'completed: the disk kept its current chain (no pivot)';
    }
    const k = key(job.domain, job.disk);
    if (this.#active.get(k) === tracked) this.#active.delete(k);
    const now = this.#now();
    job.phase = phase;
    job.outcome = outcome;
    job.endedAt = now;
    job.updatedAt = now;
    job.etaSeconds = null;
    if (phase === 'completed') job.progress = 1;
    this.#finished.set(k, job);
    this.#emit(tracked);
    this.#deps.ended({ ...job });
  }

  #emit(tracked: Tracked): void {
    this.#deps.emit({ ...tracked.job });
  }

  #schedule(): void {
    if (this.#disposed || this.#timer || this.#polling || this.#active.size === 0 || !this.#deps.watched()) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#pollAll();
    }, this.#interval);
  }

  async #pollAll(): Promise<void> {
    this.#polling = true;
    try {
      await Promise.all(
        [...this.#active.values()].map(async (t) => {
          const { domain, disk } = t.job;
          try {
            const info = await this.#deps.poll(domain, disk);
            // An end event may have come while the poll was in flight.
            if (this.#active.get(key(domain, disk)) !== t) return;
            if (info) this.#update(t, info);
            else this.#missing(t);
          } catch {
            // A failed poll (daemon restarting, domain gone) is not an outcome: the host's
            // reconnect or the lifecycle event settles the job.
          }
        }),
      );
    } finally {
      this.#polling = false;
    }
    this.#schedule();
  }
}
