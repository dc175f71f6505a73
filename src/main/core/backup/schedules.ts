// Backup schedules: due runs started while Strata runs, a run missed while it was stopped started
// once at the next start. The first checks of a host also pick up points an earlier Strata left
// running.
import type { BackupScheduleView } from '../../../shared/backup.ts';
import { backupRefusal } from '../../../shared/backup.ts';
import type { ValidParams } from '../../../shared/contract.ts';
import type { HostInfo } from '../../../shared/model.ts';
import { log } from '../../log/logger.ts';
import type { BackupContext, BackupHost } from './context.ts';
import type { BackupRunner } from './run.ts';
import { dueRun, nextDue } from './schedule.ts';

export class BackupSchedules {
  readonly #ctx: BackupContext;
  readonly #runner: BackupRunner;
  #scheduleTimer: NodeJS.Timeout | null = null;
  #ticking = false;
  #unsubscribe: (() => void) | null = null;
  /** Hosts whose backup folder holds no point left running by an earlier Strata. */
  readonly #reconciled = new Set<string>();

  constructor(ctx: BackupContext, runner: BackupRunner) {
    this.#ctx = ctx;
    this.#runner = runner;
  }

  async setSchedule(host: BackupHost, p: ValidParams<'backup.setSchedule'>): Promise<BackupScheduleView> {
    this.#ctx.refuseRemote(host);
    const now = Date.now();
    await this.#ctx.settings.setSchedule(host.uri, p.domain, p.schedule, now);
    this.#ctx.env.hub.emit('backup.settingsChanged', { hostId: host.id, domain: p.domain });
    return { domain: p.domain, schedule: p.schedule, nextRunAt: p.schedule === null ? null : nextDue(p.schedule, now) };
  }

  /** Runs due schedules now and then every 20 s while Strata runs, and as soon as a host connects. */
  startSchedules(firstAfterMs = 2000): void {
    if (this.#scheduleTimer !== null) return;
    const tick = (): void => {
      void this.#tick().catch((err: unknown) => log.warn('the backup schedules could not be checked', { err }));
    };
    // A host that connects after the first check (over SSH, that takes a while) runs its missed schedules then, not 20 s later.
    this.#unsubscribe = this.#ctx.env.hub.on((event, data) => {
      if (event === 'host' && (data as HostInfo).state === 'connected') tick();
    });
    this.#scheduleTimer = setTimeout(() => {
      tick();
      this.#scheduleTimer = setInterval(tick, 20_000);
      this.#scheduleTimer.unref();
    }, firstAfterMs);
    this.#scheduleTimer.unref();
  }

  close(): void {
    if (this.#scheduleTimer !== null) clearInterval(this.#scheduleTimer);
    this.#scheduleTimer = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  async #tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      for (const host of this.#ctx.env.hosts()) {
        if (host.libvirt === null || host.readOnly || backupRefusal(host.uri) !== null || this.#reconciled.has(host.id)) continue;
        await this.#runner.reconcile(host)
          .then((pending) => {
            if (!pending) this.#reconciled.add(host.id);
            // A backup still running that the tracker has not found yet: look again soon.
            else setTimeout(() => void this.#tick().catch(() => undefined), 1000).unref();
          })
          .catch((err: unknown) => log.warn('could not look for backups left running by an earlier Strata', { host: host.id, err }));
      }
      for (const entry of await this.#ctx.settings.schedules()) {
        const host = this.#ctx.env.hosts().find((h) => h.uri === entry.uri && !h.readOnly && h.libvirt !== null);
        if (!host) continue;
        const now = Date.now();
        const run = dueRun(entry, entry.lastRunAt, now);
        if (!run) continue;
        // Recorded before it starts: a run that cannot start is not tried again until the next time.
        await this.#ctx.settings.ran(entry.uri, entry.domain, now);
        this.#ctx.env.hub.emit('backup.settingsChanged', { hostId: host.id, domain: entry.domain });
        const kind = entry.runs % entry.fullEvery === 0 ? 'full' : 'auto';
        const when = new Date(run.due).toISOString();
        const note = run.late ? `scheduled for ${when}, run late: Strata was not running then` : `scheduled for ${when}`;
        try {
          await this.#runner.start(host, { hostId: host.id, domain: entry.domain, kind, bandwidthBytesPerSec: 0 }, undefined, note);
        } catch (err) {
          log.warn('a scheduled backup could not start', { host: host.id, domain: entry.domain, due: when, late: run.late, err });
        }
      }
    } finally {
      this.#ticking = false;
    }
  }
}
