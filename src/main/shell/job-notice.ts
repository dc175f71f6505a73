// The desktop notifications for jobs: one when a job completes, fails, or becomes ready to pivot,
// in the words of the window's own notices (both take them from src/shared/job-words.ts). The
// shell hears the core's `job` events itself, so it notifies with the window hidden or gone to
// the tray, and the page leaves notifying to it.
import { failureHint, formatDuration, jobWord, readyDetail } from '../../shared/job-words.ts';
import { isFinished, type Job, type JobPhase } from '../../shared/model.ts';

export interface JobNotice {
  jobId: string;
  hostId: string;
  domain: string;
  disk: string;
  title: string;
  body: string;
  /** Failures are critical: the notification server keeps them until they are dismissed. */
  urgency: 'normal' | 'critical';
}

/** The notification for a job now in `job.phase`, or null when that phase is not news. */
export function jobNotice(job: Job): JobNotice | null {
  const on = `${job.domain}/${job.disk}`;
  const base = { jobId: job.id, hostId: job.hostId, domain: job.domain, disk: job.disk };
  // Strata's outcome often only repeats the phase ("failed"): say it once.
  const outcome = job.outcome !== null && job.outcome.trim().toLowerCase() !== job.phase ? job.outcome : null;
  switch (job.phase) {
    case 'completed': {
      const took = job.endedAt === null ? '' : ` after ${formatDuration((job.endedAt - job.startedAt) / 1000)}`;
      return { ...base, title: `${jobWord(job.type)} on ${on} completed${took}`, body: '', urgency: 'normal' };
    }
    case 'failed':
      return { ...base, title: `${jobWord(job.type)} on ${on} failed`, body: [outcome, failureHint(job)].filter(Boolean).join('\n'), urgency: 'critical' };
    case 'ready':
      // Strata pivots or keeps such a job at once: its ready is no news to the user.
      if (job.afterReady === 'pivot' || job.afterReady === 'keep') return null;
      return {
        ...base,
        title: `${jobWord(job.type)} on ${on} is ready to pivot`,
        body: readyDetail,
        urgency: 'normal',
      };
    default:
      return null;
  }
}

/** How many ended jobs are remembered, so a repeated event for one is not told twice. */
const endedMemory = 500;

/**
 * Turns the stream of `job` events (one per tick) into notices: each job's completion, failure
 * or readiness is told once, when the job moves into that phase.
 */
export class JobNotifier {
  readonly #phases = new Map<string, JobPhase>();
  readonly #ended: string[] = [];

  onJob(job: Job): JobNotice | null {
    if (this.#ended.includes(job.id)) return null;
    const before = this.#phases.get(job.id);
    if (isFinished(job)) {
      this.#phases.delete(job.id);
      this.#ended.push(job.id);
      if (this.#ended.length > endedMemory) this.#ended.shift();
    } else {
      this.#phases.set(job.id, job.phase);
    }
    return before === job.phase ? null : jobNotice(job);
  }
}
