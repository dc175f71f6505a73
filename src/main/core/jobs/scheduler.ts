// A host's queue and bandwidth budget. The queue starts a waiting job when its disk is free and
// the host runs fewer jobs than its limit; the budget is divided evenly among the running jobs
// (each keeps its own lower limit if it asked for one) and re-divided as jobs start and end.
import type { HostLimits, Job } from '../../../shared/model.ts';
import { log } from '../../log/logger.ts';
import type { QueuedJob } from './job-tracker.ts';

export interface SchedulerDeps {
  /** Jobs that have a libvirt job behind them on this host. */
  running(): Job[];
  /** Jobs libvirt is being asked to start: they take a place like running ones. */
  starting(): Job[];
  /** The job tracker's queue, in order. */
  queued(): QueuedJob[];
  setSpeed(job: Job, bandwidthBytesPerSec: number): Promise<void>;
}

/** A job's limit under a host budget (0: none) shared by `runningCount` jobs: its own request, capped by its share. */
export function budgetShare(budgetBytesPerSec: number, requestedBytesPerSec: number, runningCount: number): number {
  if (budgetBytesPerSec === 0) return requestedBytesPerSec;
  const share = Math.max(1, Math.floor(budgetBytesPerSec / Math.max(1, runningCount)));
  return requestedBytesPerSec === 0 ? share : Math.min(requestedBytesPerSec, share);
}

export class Scheduler {
  #limits: HostLimits;
  readonly #deps: SchedulerDeps;
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

  #fits(domain: string, disk: string): boolean {
    return this.#why(domain, disk, false) === null;
  }

  #why(domain: string, disk: string, behindQueue: boolean): string | null {
    const taken = [...this.#deps.running(), ...this.#deps.starting()];
    if (taken.some((j) => j.domain === domain && j.disk === disk)) return `${domain}/${disk} already has a job`;
    if (this.#limits.maxConcurrentJobs > 0 && taken.length >= this.#limits.maxConcurrentJobs) {
      return `the host already runs ${taken.length} of at most ${this.#limits.maxConcurrentJobs} jobs`;
    }
    const waiting = this.#deps.queued().length;
    if (behindQueue && waiting > 0) return `${waiting} job(s) are waiting ahead of it`;
    return null;
  }

  /** Why a new job cannot start now, in words, or null when it can (the queue is first come, first served). */
  whyWaiting(domain: string, disk: string): string | null {
    return this.#why(domain, disk, true);
  }

  /** Starts every waiting job that fits now, in order. */
  async pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      const tried = new Set<string>();
      for (let entry = this.#nextFitting(tried); entry; entry = this.#nextFitting(tried)) {
        tried.add(entry.job.id);
        try {
          await entry.start();
        } catch (err) {
          // start() has already ended the job with libvirt's reason; the next one may still fit.
          log.debug('a queued job could not start; it ended failed with the reason', { host: entry.job.hostId, job: entry.job.id, err });
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  // start() takes the job out of the queue (requested, or failed); `tried` makes sure a start that
  // left it there anyway cannot loop.
  #nextFitting(tried: ReadonlySet<string>): QueuedJob | undefined {
    return this.#deps.queued().find((e) => !tried.has(e.job.id) && this.#fits(e.job.domain, e.job.disk));
  }

  /** The limit a job gets: its own request, capped by its share of the budget. */
  effectiveLimit(requestedBytesPerSec: number, runningCount: number): number {
    return budgetShare(this.#limits.bandwidthBudgetBytesPerSec, requestedBytesPerSec, runningCount);
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
        if (limit !== job.bandwidthBytesPerSec) await this.#setSpeed(job, limit);
      }),
    );
  }

  // The budget is gone: every job goes back to the limit it had or asked for.
  async #restoreRequested(): Promise<void> {
    await Promise.all(
      this.#deps.running().map(async (job) => {
        if (job.requestedBandwidthBytesPerSec !== job.bandwidthBytesPerSec) {
          await this.#setSpeed(job, job.requestedBandwidthBytesPerSec);
        }
      }),
    );
  }

  // A job that ends while its share changes refuses the new limit; nothing is lost, the next
  // rebalance divides the budget among the jobs left.
  async #setSpeed(job: Job, limit: number): Promise<void> {
    try {
      await this.#deps.setSpeed(job, limit);
    } catch (err) {
      log.debug('a job refused its share of the budget; the next rebalance tries again', { host: job.hostId, job: job.id, err });
    }
  }
}
