// Closing the window while jobs run. Block jobs belong to QEMU: quitting Strata never aborts
// them, and the next start finds them again. So the close asks whether to keep Strata in the
// background (a tray icon listing the running jobs, and notifications when they end) or to quit,
// and names what a quit does end: what only Strata holds (its queue, a remote restore's qemu-img).
import { isFinished, type Job } from '../../shared/model.ts';
import { jobWord } from '../../shared/job-words.ts';

export interface ClosePrompt {
  type: 'question';
  title: string;
  message: string;
  detail: string;
  buttons: string[];
  defaultId: number;
  cancelId: number;
}

export const closeChoices = ['background', 'quit', 'cancel'] as const;
export type CloseChoice = (typeof closeChoices)[number];

/** Jobs that run or wait: the ones a close should mention. */
function liveJobs(jobs: readonly Job[]): Job[] {
  return jobs.filter((job) => !isFinished(job));
}

/**
 * Jobs that end when Strata quits, because only Strata holds them: a queued one never starts, and a
 * remote restore (qemu-img over ssh) is aborted, since nothing would check and publish its file.
 */
function endsAtQuit(job: Job): boolean {
  return job.phase === 'queued' || job.engine === 'qemu-img';
}

/** What quitting does to these jobs, in a sentence or two. */
function atQuit(live: readonly Job[]): string {
  const ending = live.filter(endsAtQuit);
  if (ending.length === 0) return 'They go on in QEMU without Strata: quitting never stops them, and Strata shows them again when it next starts.';
  const queued = ending.filter((j) => j.phase === 'queued').length;
  const restores = ending.length - queued;
  const ends = [
    queued === 0 ? null : queued === 1 ? 'the queued job is dropped without starting' : `the ${queued} queued jobs are dropped without starting`,
    restores === 0 ? null : restores === 1 ? 'the restore on a remote host is aborted and its partial image removed' : `the ${restores} restores on remote hosts are aborted and their partial images removed`,
  ].filter((e): e is string => e !== null);
  const goOn = ending.length < live.length ? 'The others go on in QEMU without Strata, which shows them again when it next starts. ' : '';
  return `${goOn}Quitting ends what only Strata holds: ${ends.join(', and ')}.`;
}

/** The question asked on close, or null when no job runs and the window simply closes. */
export function closePrompt(jobs: readonly Job[]): ClosePrompt | null {
  const live = liveJobs(jobs);
  if (live.length === 0) return null;
  const n = live.length;
  return {
    type: 'question',
    title: 'Strata',
    message: n === 1 ? 'A block job is still running' : `${n} block jobs are still running`,
    detail:
      `${live.slice(0, 5).map(jobLine).join('\n')}${n > 5 ? `\n… and ${n - 5} more` : ''}\n\n` +
      `${atQuit(live)} ` +
      'Kept in the background, Strata stays in the tray and tells you when they end.',
    // In the order of closeChoices.
    buttons: ['Keep in Background', 'Quit', 'Cancel'],
    defaultId: 0,
    cancelId: 2,
  };
}

export function closeChoice(response: number): CloseChoice {
  return closeChoices[response] ?? 'cancel';
}

/** One job as a line of the tray menu or the close question: "Pull on web/vda: 42 %". */
export function jobLine(job: Job): string {
  const what = `${jobWord(job.type)} on ${job.domain}/${job.disk}`;
  switch (job.phase) {
    case 'queued':
      return `${what}: queued`;
    case 'ready':
      return `${what}: ready to pivot`;
    case 'pivoting':
      return `${what}: pivoting`;
    case 'aborting':
      return `${what}: aborting`;
    default:
      return job.progress === null ? `${what}: starting` : `${what}: ${Math.floor(job.progress * 100)} %`;
  }
}

/** The tray's menu as plain data; the glue turns the ids into actions. */
export type TrayItem = { label: string; enabled: false } | { type: 'separator' } | { label: string; id: 'show' | 'quit' };

export function trayMenu(jobs: readonly Job[]): TrayItem[] {
  const live = liveJobs(jobs);
  const lines: TrayItem[] = live.length === 0 ? [{ label: 'No block jobs running', enabled: false }] : live.map((job) => ({ label: jobLine(job), enabled: false }));
  return [...lines, { type: 'separator' }, { label: 'Show Strata', id: 'show' }, { label: 'Quit Strata', id: 'quit' }];
}

export function trayTooltip(jobs: readonly Job[]): string {
  const n = liveJobs(jobs).length;
  return n === 0 ? 'Strata' : `Strata: ${n} block job${n === 1 ? '' : 's'} running`;
}
