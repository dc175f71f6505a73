// What the user is told when a job's change is news (an end, or a ready that waits for the user;
// src/shared/job-news.ts decides, for the desktop's notifications too): a toast in the window
// (closable, the newest first), one sentence in a live region (polite for news, assertive for
// failures), and, once the user has allowed it, a system notification.
import { jobNews } from '../../../shared/job-news.ts';
import type { Job, JobTransition } from '../../../shared/model.ts';
import { shellNotifies } from './desktop-shell.ts';

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

  /** Tells a job's change if it is news (see src/shared/job-news.ts, which the desktop uses too). */
  tell(job: Job, transition: JobTransition): void {
    const news = jobNews(job, transition);
    if (news) this.#push({ kind: news.kind, title: news.title, detail: news.detail, hint: news.hint }, job);
  }

  #push(notice: Omit<Notice, 'id' | 'hostId' | 'domain'>, job: Job): void {
    const full: Notice = { ...notice, id: this.#next++, hostId: job.hostId, domain: job.domain };
    this.items = [full, ...this.items].slice(0, maxShown);
    if (full.kind !== 'bad') setTimeout(() => this.dismiss(full.id), newsMs);
    const sentence = [full.title, full.detail, full.hint].flatMap((part) => (part ? [part.replace(/\.$/, '')] : [])).join('. ');
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
