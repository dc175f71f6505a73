// When a scheduled backup is due: daily or weekly at a local time. A run missed while Strata was
// not running is due once at the next start (never once per missed day), and says it is late.
import type { BackupSchedule } from '../../../shared/backup.ts';

/** A run this long after its time is called late (Strata was stopped, or the machine asleep). */
export const lateAfterMs = 5 * 60_000;

function atTime(day: Date, at: string): Date {
  const [h, m] = at.split(':').map(Number);
  const d = new Date(day);
  d.setHours(h ?? 0, m ?? 0, 0, 0);
  return d;
}

/** The latest time the schedule was due at or before `now`. */
export function lastDue(schedule: BackupSchedule, now: number): number {
  const today = atTime(new Date(now), schedule.at);
  for (let back = 0; back <= 7; back++) {
    const d = new Date(today);
    d.setDate(d.getDate() - back);
    if (d.getTime() > now) continue;
    if (schedule.every === 'day' || d.getDay() === schedule.weekday) return d.getTime();
  }
  return today.getTime() - 7 * 86_400_000;
}

/** The next time the schedule is due after `now`. */
export function nextDue(schedule: BackupSchedule, now: number): number {
  const today = atTime(new Date(now), schedule.at);
  for (let ahead = 0; ahead <= 7; ahead++) {
    const d = new Date(today);
    d.setDate(d.getDate() + ahead);
    if (d.getTime() <= now) continue;
    if (schedule.every === 'day' || d.getDay() === schedule.weekday) return d.getTime();
  }
  return today.getTime() + 7 * 86_400_000;
}

/** The run due now, if any: when it was due and whether it is late. */
export function dueRun(schedule: BackupSchedule, lastRunAt: number | null, now: number): { due: number; late: boolean } | null {
  const due = lastDue(schedule, now);
  if (lastRunAt !== null && lastRunAt >= due) return null;
  return { due, late: now - due > lateAfterMs };
}
