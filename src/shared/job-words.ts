// How Strata words a job for people: its kind, how long it took, and what to try after a failure.
// The window's notices and the desktop's notifications both say it this way.
import type { Job, JobType } from './model.ts';

// Keyed by string, not Record<JobType>, so a type added to the model shows as its own name
// here instead of breaking the build.
const jobWords: Record<string, string> = {
  pull: 'Pull',
  copy: 'Copy',
  commit: 'Commit',
  'active-commit': 'Active commit',
  backup: 'Backup',
  restore: 'Restore',
  unknown: 'Block job',
};

/** "Pull", "Active commit", … as used at the start of a label. */
export function jobWord(type: JobType): string {
  return jobWords[type] ?? 'Block job';
}

/** Seconds → "45 s", "3 min 05 s", "2 h 05 min", "1 d 3 h". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** What a copy or active commit at ready does until the user decides. */
export const readyDetail = 'It keeps mirroring new writes until you pivot to the new image or abort.';

/** What to try after a failure, by what failed: libvirt's events carry no error text. */
export function failureHint(job: Pick<Job, 'type'>): string {
  const host = 'Look at the host: journalctl -u libvirtd, and free space where the images live.';
  if (job.type === 'commit' || job.type === 'active-commit') {
    return `The layers above the base may no longer be valid images; do not start the domain from them. ${host}`;
  }
  if (job.type === 'copy') return `The disk still uses its old chain; the partial copy is left unused. ${host}`;
  return `The chain is unchanged: try again. ${host}`;
}
