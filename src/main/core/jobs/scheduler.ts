// A host's queue and bandwidth budget. The queue starts a waiting job when its disk is free and
// the host runs fewer jobs than its limit; the budget is divided evenly among the running jobs
// (each keeps its own lower limit if it asked for one) and re-divided as jobs start and end.
import type { HostLimits, Job } from '../../../shared/model.ts';

export interface QueuedEntry {
  job: Job;
  /** Starts the job in libvirt; a failure ends the queued job with its reason. */
  launch(): Promise<void>;
}

export interface SchedulerDeps {
  /** Jobs that have a libvirt job behind them on this host. */
  running(): Job[];
  setSpeed(job: Job, bandwidthBytesPerSec: number): Promise<void>;
  /** A queued job changed (position) or left the queue without starting (failed to launch). */
  emit(job: Job): void;
}

export class Scheduler {
  #limits: HostLimits;
  readonly #deps: SchedulerDeps;
  readonly #queue: QueuedEntry[] = [];
  #pumping = false;

  constructor(limits: HostLimits, deps: SchedulerDeps) {
    this.#limits = { ...limits };
    this.#deps = deps;
  }

  get limits(): HostLimits {
    return { ...this.#limits };
  }

  /** Resolves once the running jobs' limits follow the new budget. */
  async setLimits(limits: HostLimits): Promise<void> {
    const hadBudget = this.#limits.bandwidthBudgetBytesPerSec > 0;
    this.#limits = { ...limits };
    if (hadBudget && limits.bandwidthBudgetBytesPerSec === 0) await this.#restoreRequested();
  }

  queued(): Job[] {
    return this.#queue.map((e) => ({ ...e.job }));
  }

  isQueued(domain: string, disk: string): boolean {
    return this.#queue.some((e) => e.job.domain === domain && e.job.disk === disk);
  }

  /** Whether a new job could start right now (ahead of nobody: the queue is first come, first served). */
  canStart(domain: string, disk: string): boolean {
    return this.#queue.length === 0 && this.#fits(domain, disk);
  }

  #fits(domain: string, disk: string): boolean {
    const running = this.#deps.running();
    if (running.some((j) => j.domain === domain && j.disk === disk)) return false;
    return this.#limits.maxConcurrentJobs === 0 || running.length < this.#limits.maxConcurrentJobs;
  }

  /** Why a job cannot start now, in words, or null when it can. */
  whyWaiting(domain: string, disk: string): string | null {
    const running = this.#deps.running();
    if (running.some((j) => j.domain === domain && j.disk === disk)) return `${domain}/${disk} already has a job`;
    if (this.#limits.maxConcurrentJobs > 0 && running.length >= this.#limits.maxConcurrentJobs) {
      return `the host already runs ${running.length} of at most ${this.#limits.maxConcurrentJobs} jobs`;
    }
    if (this.#queue.length > 0) return `${this.#queue.length} job(s) are waiting ahead of it`;
    return null;
  }

  enqueue(entry: QueuedEntry): void {
    this.#queue.push(entry);
    this.#deps.emit({ ...entry.job });
  }

  /** Removes a waiting job (abort before it started); returns it, or null. */
  dequeue(domain: string, disk: string): Job | null {
    const i = this.#queue.findIndex((e) => e.job.domain === domain && e.job.disk === disk);
    if (i < 0) return null;
    const [entry] = this.#queue.splice(i, 1);
    return entry ? entry.job : null;
  }

  /** Starts every waiting job that fits now, in order. */
  async pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (let i = 0; i < this.#queue.length; ) {
        const entry = this.#queue[i]!;
        if (!this.#fits(entry.job.domain, entry.job.disk)) {
          i += 1;
          continue;
        }
        this.#queue.splice(i, 1);
        try {
          await entry.launch();
        } catch {
          // launch() has already ended the job with libvirt's reason.
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** The limit a job gets: its own request, capped by its share of the budget. */
  effectiveLimit(requestedBytesPerSec: number, runningCount: number): number {
    const budget = this.#limits.bandwidthBudgetBytesPerSec;
    if (budget === 0) return requestedBytesPerSec;
    const share = Math.max(1, Math.floor(budget / Math.max(1, runningCount)));
    return requestedBytesPerSec === 0 ? share : Math.min(requestedBytesPerSec, share);
  }

  /**
   * Applies each running job's current share; only jobs whose limit changes are touched. Without
   * a budget nothing is touched: a job's limit, whoever set it (virsh, another client), is its own.
   */
  async rebalance(): Promise<void> {
    if (this.#limits.bandwidthBudgetBytesPerSec === 0) return;
    const running = this.#deps.running();
    await Promise.all(
      running.map(async (job) => {
        const limit = this.effectiveLimit(job.requestedBandwidthBytesPerSec, running.length);
        if (limit !== job.bandwidthBytesPerSec) await this.#deps.setSpeed(job, limit).catch(() => undefined);
      }),
    );
  }

  // The budget is gone: every job goes back to the limit it had or asked for.
  async #restoreRequested(): Promise<void> {
    await Promise.all(
      this.#deps.running().map(async (job) => {
        if (job.requestedBandwidthBytesPerSec !== job.bandwidthBytesPerSec) {
          await this.#deps.setSpeed(job, job.requestedBandwidthBytesPerSec).catch(() => undefined);
        }
      }),
    );
  }
}
