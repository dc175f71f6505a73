// What the user is told when one of Strata's jobs ends or becomes ready, or any job fails: a toast
// in the window (closable, the newest first), one sentence in a live region (polite for news,
// assertive for failures), and, once the user has allowed it, a system notification.
import type { Job } from '../../../shared/model.ts';
import { shellNotifies } from './desktop-shell.ts';
import { failureHint, readyDetail } from '../../../shared/job-words.ts';
import { formatDuration, jobWord } from './format.ts';

export type NoticeKind = 'ok' | 'info' | 'bad';

export interface Notice {
  id: number;
  kind: NoticeKind;
  title: string;
  detail: string | null;
  /** What to do about it (failures). */
  hint: string | null;
  /** The domain the job ran on, so the toast can lead there. */
  hostId: string;
  domain: string;
}

/** Beyond this many, the oldest toasts go: the jobs view keeps every outcome. */
const maxShown = 4;
/** News leaves by itself after this long (PatternFly's toast timeout); failures stay until closed. */
const newsMs = 8000;

type Permission = NotificationPermission | 'unsupported';

export class Notices {
  items = $state.raw<Notice[]>([]);
  /** The live regions' text; set once per transition, never per tick. */
  polite = $state('');
  assertive = $state('');
  // In the desktop app the shell notifies natively (it hears jobs even with the window hidden):
  // the page then sends no web Notification of its own, so nothing is told twice.
  permission = $state<Permission>(shellNotifies() || typeof Notification === 'undefined' ? 'unsupported' : Notification.permission);
  #next = 1;

  /** Must run from a click: browsers ignore permission requests made without a user gesture. */
  async askPermission(): Promise<void> {
    if (this.permission === 'unsupported') return;
    this.permission = await Notification.requestPermission();
  }

  dismiss(id: number): void {
    this.items = this.items.filter((n) => n.id !== id);
  }

  jobEnded(job: Job): void {
    // Jobs other tools started are theirs to report; only their failures are news here.
    if (job.origin !== 'strata' && job.phase !== 'failed') return;
    const on = `${job.domain}/${job.disk}`;
    const took = job.endedAt === null ? '' : ` after ${formatDuration((job.endedAt - job.startedAt) / 1000)}`;
    if (job.phase === 'completed') {
      this.#push({ kind: 'ok', title: `${jobWord(job.type)} on ${on} completed${took}`, detail: null, hint: null }, job);
    } else if (job.phase === 'failed') {
      this.#push({ kind: 'bad', title: `${jobWord(job.type)} on ${on} failed`, detail: job.outcome, hint: failureHint(job) }, job);
    } else if (job.phase === 'cancelled') {
      this.#push({ kind: 'info', title: `${jobWord(job.type)} on ${on} cancelled`, detail: job.outcome, hint: null }, job);
    } else {
      this.#push({ kind: 'info', title: `${jobWord(job.type)} on ${on} ended; how is not known`, detail: job.outcome, hint: null }, job);
    }
  }

  jobReady(job: Job): void {
    // Strata finishes a job that pivots or keeps by itself at once; another tool's is its own.
    if (job.origin !== 'strata' || job.afterReady === 'pivot' || job.afterReady === 'keep') return;
    const on = `${job.domain}/${job.disk}`;
    this.#push(
      {
        kind: 'info',
        title: `${jobWord(job.type)} on ${on} is ready to pivot`,
        detail: readyDetail,
        hint: null,
      },
      job,
    );
  }

  #push(notice: Omit<Notice, 'id' | 'hostId' | 'domain'>, job: Job): void {
    // Strata's outcome often only repeats the phase ("cancelled"): say it once.
    const detail = notice.detail?.trim().toLowerCase() === job.phase ? null : notice.detail;
    const full: Notice = { ...notice, detail, id: this.#next++, hostId: job.hostId, domain: job.domain };
    this.items = [full, ...this.items].slice(0, maxShown);
    if (full.kind !== 'bad') setTimeout(() => this.dismiss(full.id), newsMs);
    const sentence = [full.title, full.detail, full.hint].filter(Boolean).join('. ');
    if (full.kind === 'bad') this.assertive = sentence;
    else this.polite = sentence;
    if (this.permission === 'granted') {
      try {
        new Notification(full.title, { body: [full.detail, full.hint].filter(Boolean).join('\n'), tag: job.id });
      } catch (error) {
        console.error('Strata: the system notification failed', error);
      }
    }
  }
}

/** What to try after a failure, by what failed: libvirt's events carry no error text. */
