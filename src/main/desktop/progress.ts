// The taskbar/dock icon's progress (BrowserWindow.setProgressBar's value) from the jobs the core
// reports. The rule:
// - only jobs that have started and not ended count (queued ones do not move);
// - among them, those with a known progress (end > 1) give done/total weighted by size:
//   Σcur / Σend, so a 40 GiB pull outweighs a 1 GiB one, as the bytes still to move do;
// - jobs whose progress libvirt cannot tell yet add nothing to that sum, but when they are all
//   that runs the bar is indeterminate (2, Electron's "more than 1");
// - nothing running: -1, which removes the bar.
// A ready job has copied everything and mirrors new writes: it counts as cur/end, i.e. full.
import { isFinished, type Job } from '../../shared/model.ts';

export const noProgress = -1;
export const indeterminateProgress = 2;

export function aggregateProgress(jobs: Iterable<Pick<Job, 'phase' | 'cur' | 'end'>>): number {
  let cur = 0;
  let end = 0;
  let running = 0;
  for (const job of jobs) {
    if (job.phase === 'queued' || isFinished(job)) continue;
    running++;
    if (job.end > 1) {
      end += job.end;
      cur += Math.min(Math.max(job.cur, 0), job.end);
    }
  }
  if (running === 0) return noProgress;
  if (end === 0) return indeterminateProgress;
  return cur / end;
}

/** Keeps the latest state of each job from the core's `job` events, for the aggregate. */
export class LiveJobs {
  readonly #jobs = new Map<string, Job>();

  update(job: Job): void {
    if (isFinished(job)) this.#jobs.delete(job.id);
    else this.#jobs.set(job.id, job);
  }

  /** Jobs waiting or running, oldest first. */
  list(): Job[] {
    return [...this.#jobs.values()].sort((a, b) => a.startedAt - b.startedAt);
  }

  progress(): number {
    return aggregateProgress(this.#jobs.values());
  }
}
