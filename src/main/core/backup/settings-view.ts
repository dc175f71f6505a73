// The backup settings as the window shows them: the host's folder with the free space there, and a
// domain's retention and schedule with its next run and whether the last one ran late. Read from
// what the settings file keeps; nothing here asks libvirt.
import { backupRefusal, type BackupScheduleState, type BackupSettingsState } from '../../../shared/backup.ts';
import { remoteFolderWanted, type BackupContext, type BackupHost } from './context.ts';
import { freeBytesAt } from './files.ts';
import { dueRun, lastDue, lateAfterMs, nextDue } from './schedule.ts';
import { defaultRetention } from './settings.ts';

export async function readSettings(ctx: BackupContext, host: BackupHost, domain: string | undefined, now = Date.now()): Promise<BackupSettingsState> {
  const location = await ctx.location(host);
  const refused = backupRefusal(host.uri) ?? (location.source === 'unset' ? remoteFolderWanted(location.onHost ?? host.label) : null);
  // A remote host's free space is what its df says, over its ssh; unknown when that fails.
  const freeBytes =
    refused !== null ? null : location.onHost === null ? freeBytesAt(location.location) : await ctx.files(host).then((f) => f.freeBytes(location.location)).catch(() => null);
  if (domain === undefined) return { location: { ...location, freeBytes, refused }, domain: null };

  const chosen = await ctx.settings.chosenRetention(host.uri, domain);
  const entry = (await ctx.settings.schedules()).find((e) => e.uri === host.uri && e.domain === domain);
  let schedule: BackupScheduleState = { domain, schedule: null, nextRunAt: null, runs: 0, nextKind: null, lastRun: null };
  if (entry) {
    const { every, at, weekday, fullEvery } = entry;
    const s = { every, at, weekday, fullEvery };
    // A run due and not begun yet (Strata just started, or the check is seconds away) is the next one.
    const pending = dueRun(s, entry.lastRunAt, now);
    // The scheduler records a run as it begins, at the time it checks: the time it was due follows
    // from that, as does whether it was late. Before the first run lastRunAt is when it was set.
    const dueAt = entry.runs > 0 && entry.lastRunAt !== null ? lastDue(s, entry.lastRunAt) : null;
    schedule = {
      domain,
      schedule: s,
      nextRunAt: pending ? now : nextDue(s, now),
      runs: entry.runs,
      nextKind: entry.runs % fullEvery === 0 ? 'full' : 'auto',
      lastRun: dueAt !== null && entry.lastRunAt !== null ? { at: entry.lastRunAt, dueAt, late: entry.lastRunAt - dueAt > lateAfterMs } : null,
    };
  }
  return {
    location: { ...location, freeBytes, refused },
    domain: { domain, retention: chosen === null ? { ...defaultRetention, source: 'default' } : { ...chosen, source: 'set' }, schedule },
  };
}
