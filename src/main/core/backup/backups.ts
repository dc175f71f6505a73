// Backups of running domains: push-mode virDomainBackupBegin with a checkpoint created atomically
// with it, so the next backup can be incremental. libvirt 9.0 runs a push backup as a block job of
// each disk (virDomainGetBlockJobInfo shows it, virDomainBlockJobSetSpeed throttles it while it
// runs, virDomainBlockJobAbort cancels it, and block-job events end it, all measured here), so a
// backup is followed by the host's JobTracker like every other job: it is in jobs.list and the
// history with type 'backup', with progress, rate, abort and the bandwidth slider. Shut-off
// domains are backed up through the offline engine. This class is what the service calls; the
// work is in plan.ts (preview, full or incremental), run.ts (start, follow, settle, retention),
// offline.ts (shut-off domains), sets.ts (list, restore, verify, remove) and schedules.ts.
import type { BackupPlan, BackupResults, BackupScheduleView, BackupSet, BackupSettingsView } from '../../../shared/backup.ts';
import type { ValidParams } from '../../../shared/contract.ts';
import { BackupContext, type BackupHost, type BackupsEnv } from './context.ts';
import { planBackup } from './plan.ts';
import { BackupRunner } from './run.ts';
import { BackupSchedules } from './schedules.ts';
import { readSettings } from './settings-view.ts';
import { listSets, previewRestore, removeBackup, restoreBackup, verifyBackup } from './sets.ts';

export { defaultBackupRoot, type BackupHost, type BackupsEnv } from './context.ts';

export class Backups {
  readonly #ctx: BackupContext;
  readonly #runner: BackupRunner;
  readonly #schedules: BackupSchedules;

  constructor(env: BackupsEnv) {
    this.#ctx = new BackupContext(env);
    this.#runner = new BackupRunner(this.#ctx);
    this.#schedules = new BackupSchedules(this.#ctx, this.#runner);
  }

  location(host: BackupHost): Promise<BackupSettingsView> {
    return this.#ctx.location(host);
  }

  async setLocation(host: BackupHost, path: string): Promise<BackupSettingsView> {
    const view = await this.#ctx.setLocation(host, path);
    this.#ctx.env.hub.emit('backup.settingsChanged', { hostId: host.id, domain: null });
    return view;
  }

  async setRetention(host: BackupHost, p: ValidParams<'backup.setRetention'>): Promise<BackupResults['backup.setRetention']> {
    await this.#ctx.settings.setRetention(host.uri, p.domain, { keepSets: p.keepSets, keepDays: p.keepDays });
    this.#ctx.env.hub.emit('backup.settingsChanged', { hostId: host.id, domain: p.domain });
    return { domain: p.domain, keepSets: p.keepSets, keepDays: p.keepDays };
  }

  /** The host's folder, and with a domain its retention and schedule, as the window shows them. */
  settings(host: BackupHost, domain?: string): Promise<BackupResults['backup.settings']> {
    return readSettings(this.#ctx, host, domain);
  }

  list(host: BackupHost, domain?: string): Promise<BackupSet[]> {
    return listSets(this.#ctx, host, domain);
  }

  plan(host: BackupHost, p: ValidParams<'backup.preview'>): Promise<BackupPlan> {
    return planBackup(this.#ctx, host, p);
  }

  start(host: BackupHost, p: ValidParams<'backup.start'>): Promise<BackupResults['backup.start']> {
    return this.#runner.start(host, p);
  }

  setSchedule(host: BackupHost, p: ValidParams<'backup.setSchedule'>): Promise<BackupScheduleView> {
    return this.#schedules.setSchedule(host, p);
  }

  /** Runs due schedules now and then every 20 s while Strata runs. */
  startSchedules(firstAfterMs = 2000): void {
    this.#schedules.startSchedules(firstAfterMs);
  }

  close(): void {
    this.#schedules.close();
  }

  /** Resolves once the backup points being settled are written (the quit waits for it). */
  flush(): Promise<void> {
    return this.#runner.flush();
  }

  remove(host: BackupHost, p: ValidParams<'backup.remove'>): Promise<{ removed: string }> {
    return removeBackup(this.#ctx, host, p);
  }

  restorePreview(host: BackupHost, p: ValidParams<'backup.restorePreview'>): Promise<BackupResults['backup.restorePreview']> {
    return previewRestore(this.#ctx, host, p);
  }

  restore(host: BackupHost, p: ValidParams<'backup.restore'>): Promise<BackupResults['backup.restore']> {
    return restoreBackup(this.#ctx, host, p);
  }

  verify(host: BackupHost, p: ValidParams<'backup.verify'>): Promise<BackupResults['backup.verify']> {
    return verifyBackup(this.#ctx, host, p);
  }
}
