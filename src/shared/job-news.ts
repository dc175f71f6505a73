// What a change of a job tells the user, decided in one place: the window's notices and the
// desktop's notifications both ask here, so they tell the same changes in the same words.
// The policy: the end of a job Strata started is news, and its ready when it waits for the user
// to pivot or abort (afterReady 'wait'); a job another client (virsh, a backup tool) started is
// that client's to report, and only its failure is news here, said as started elsewhere. On a
// host many people use, their jobs end all the time: told in full, they would bury Strata's own.
// Nothing else is news (a start is the user's own doing; progress is shown, not told).
import { failureHint, formatDuration, jobWord, readyDetail } from './job-words.ts';
import type { Job, JobTransition } from './model.ts';

export interface JobNews {
  /** 'ok': it did what was asked; 'info': something to know or to decide; 'bad': it failed. */
  kind: 'ok' | 'info' | 'bad';
  title: string;
  /** How it ended, or what the phase means; null when the title says it all. */
  detail: string | null;
  /** What to do about it (failures). */
  hint: string | null;
  /** For a notification server: a failure stays until dismissed, a cancel is told quietly. */
  urgency: 'low' | 'normal' | 'critical';
}

const elsewhere = 'Started outside Strata (virsh or another libvirt client).';

/** The news of `job` after `transition`, or null when that change is not news. */
export function jobNews(job: Job, transition: JobTransition): JobNews | null {
  const on = `${jobWord(job.type)} on ${job.domain}/${job.disk}`;
  if (transition === 'ready') {
    // Strata pivots or keeps such a job at once: its ready is no news.
    if (job.phase !== 'ready' || job.afterReady !== 'wait' || job.origin !== 'strata') return null;
    return { kind: 'info', title: `${on} is ready to pivot`, detail: details(job, readyDetail), hint: null, urgency: 'normal' };
  }
  if (transition !== 'ended' || (job.origin !== 'strata' && job.phase !== 'failed')) return null;
  // Strata's outcome often only repeats the phase ("cancelled"): say it once.
  const outcome = job.outcome !== null && job.outcome.trim().toLowerCase() !== job.phase ? job.outcome : null;
  switch (job.phase) {
    case 'completed': {
      const took = job.endedAt !== null ? ` after ${formatDuration((job.endedAt - job.startedAt) / 1000)}` : '';
      return { kind: 'ok', title: `${on} completed${took}`, detail: details(job, outcome), hint: null, urgency: 'normal' };
    }
    case 'failed':
      return { kind: 'bad', title: `${on} failed`, detail: details(job, outcome), hint: failureHint(job), urgency: 'critical' };
    case 'cancelled':
      return { kind: 'info', title: `${on} cancelled`, detail: details(job, outcome), hint: null, urgency: 'low' };
    case 'unknown':
      return { kind: 'info', title: `${on} ended; how is not known`, detail: details(job, outcome), hint: null, urgency: 'normal' };
    default:
      return null;
  }
}

/** The news as one text below a title: the detail, then the hint. */
export function newsBody(news: JobNews): string {
  return [news.detail, news.hint].filter(Boolean).join('\n');
}

function details(job: Job, first: string | null): string | null {
  const left = job.leftover?.status === 'left' ? `${job.leftover.partial ? 'The partial copy' : 'The copy'} ${job.leftover.path} is left on the host, unused; Strata can remove it.` : null;
  const text = [first, job.origin === 'external' ? elsewhere : null, left].filter(Boolean).join(' ');
  return text === '' ? null : text;
}
