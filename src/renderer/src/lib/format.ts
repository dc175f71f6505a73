// Formatting for people: sizes, rates, durations and words for job types and phases.
// Binary units throughout (KiB, MiB, GiB), always written out.
import { formatDuration, jobWord } from '../../../shared/job-words.ts';
import type { JobPhase, JobType } from '../../../shared/model.ts';

export { formatDuration, jobWord };

export const MiB = 1024 * 1024;

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** 1536 → "1.50 KiB"; three significant figures above 1 KiB. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '—';
  const sign = bytes < 0 ? '-' : '';
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${sign}${Math.round(value)} B`;
  // Round first so 1023.9 KiB does not print as "1024 KiB" with the wrong unit.
  const digits = value < 10 ? 2 : value < 100 ? 1 : 0;
  let text = value.toFixed(digits);
  if (Number(text) >= 1024 && unit < units.length - 1) {
    unit++;
    text = (Number(text) / 1024).toFixed(2);
  }
  return `${sign}${text} ${units[unit]}`;
}

/** A measured rate: 12 MiB/s → "12.0 MiB/s". */
export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec)}/s`;
}

/** A bandwidth limit in bytes/s, 0 meaning none: "No limit", "5 MiB/s", "1.5 MiB/s", "512 KiB/s". */
export function formatLimit(bytesPerSec: number): string {
  if (bytesPerSec <= 0) return 'No limit';
  if (bytesPerSec < MiB) return formatRate(bytesPerSec);
  const mib = bytesPerSec / MiB;
  return `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB/s`;
}

/** A 0..1 ratio as a whole percent, rounded down so 100 % means done. */
export function toPercent(progress: number): number {
  return Math.max(0, Math.min(100, Math.floor(progress * 100)));
}

/** "pull", "active commit", … as used inside a label ("Abort pull on …"). */
export function jobWordLower(type: JobType): string {
  const word = jobWord(type);
  return word.charAt(0).toLowerCase() + word.slice(1);
}

const phaseWords: Record<JobPhase, string> = {
  queued: 'Queued',
  requested: 'Starting',
  running: 'Running',
  ready: 'Ready to pivot',
  pivoting: 'Pivoting',
  aborting: 'Aborting',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Cancelled',
  unknown: 'Ended, outcome unknown',
};

export function phaseWord(phase: JobPhase): string {
  return phaseWords[phase];
}

/** "12:04:31" for an epoch-ms time today, with the date otherwise. */
export function formatTime(epochMs: number, now = Date.now()): string {
  const d = new Date(epochMs);
  const sameDay = new Date(now).toDateString() === d.toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}
