// Where a host's jobs are kept, one disk at a time: the job starting or running, the queue, and
// the last ending. JobTracker changes them; what is read of them is read here.
import type { Job, JobType } from '../../../shared/model.ts';
import { diskKey as key, type QueuedJob, type Tracked } from './tracked-job.ts';

// libvirt 9.0.0 (Debian 12) can show a job for a moment after its end event (fixed in 9.1).
const lingerMs = 2000;

export class JobBook {
  /** Jobs being started or with a libvirt job behind them, one per disk. */
  protected readonly live = new Map<string, Tracked>();
  /** Waiting jobs, first come first served. */
  protected readonly waiting: { tracked: Tracked; start(): Promise<void> }[] = [];
  /** The last ended job of each disk. */
  protected readonly finished = new Map<string, Job>();
  /** Ended jobs that never had a libvirt job (cancelled in the queue, refused at the start). */
  protected readonly neverRan = new WeakSet<Job>();

  /** Jobs with a libvirt job behind them (running, ready, pivoting, aborting). */
  running(): Job[] {
    return [...this.live.values()].filter((t) => t.job.phase !== 'requested').map((t) => ({ ...t.job }));
  }

  /** Jobs libvirt is being asked to start: they take a place on the host like running ones. */
  starting(): Job[] {
    return [...this.live.values()].filter((t) => t.job.phase === 'requested').map((t) => ({ ...t.job }));
  }

  queued(): QueuedJob[] {
    return this.waiting.map((e) => ({ job: { ...e.tracked.job }, start: e.start }));
  }

  /** Running and starting jobs, the queue in order, then the last ended job of each idle disk. */
  list(): Job[] {
    const active = [...this.live.values()].map((t) => ({ ...t.job }));
    const queued = this.waiting.map((e) => ({ ...e.tracked.job }));
    const busy = new Set([...this.live.keys(), ...this.waiting.map((e) => key(e.tracked.job.domain, e.tracked.job.disk))]);
    const finished = [...this.finished.entries()].filter(([k]) => !busy.has(k)).map(([, j]) => ({ ...j }));
    return [...active, ...queued, ...finished];
  }

  /** The disk's job that has a libvirt job behind it, if any. */
  active(domain: string, disk: string): Job | undefined {
    const tracked = this.live.get(key(domain, disk));
    return tracked && tracked.job.phase !== 'requested' ? { ...tracked.job } : undefined;
  }

  /** Whatever occupies the disk: a job starting, running or waiting in the queue. */
  occupying(domain: string, disk: string): Job | undefined {
    const tracked = this.live.get(key(domain, disk)) ?? this.#waitingOn(domain, disk)?.tracked;
    return tracked ? { ...tracked.job } : undefined;
  }

  #waitingOn(domain: string, disk: string): { tracked: Tracked; start(): Promise<void> } | undefined {
    return this.waiting.find((e) => e.tracked.job.domain === domain && e.tracked.job.disk === disk);
  }

  /** The disk's place in the queue, if a job waits there. */
  protected queuedOn(domain: string, disk: string): Tracked | undefined {
    return this.#waitingOn(domain, disk)?.tracked;
  }

  /** A job starting or waiting, by id. */
  protected pending(id: string): Tracked | undefined {
    return [...this.live.values(), ...this.waiting.map((e) => e.tracked)].find((t) => t.job.id === id);
  }

  /** Whether a sighting of a job of `type` is the job that just ended there, lingering. */
  protected justEnded(k: string, type: JobType, now: number): boolean {
    const last = this.finished.get(k);
    return !!last && !this.neverRan.has(last) && last.type === type && last.endedAt !== null && now - last.endedAt < lingerMs;
  }
}
