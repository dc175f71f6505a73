// One domain's backup sets as the window shows them: read once, read again whenever the server
// says a set of that domain changed (a backup began or ended, retention or a user removed a set).
// Its backup settings likewise: the host's folder, the domain's retention and schedule.
import type { BackupPlan, BackupResults, BackupSchedule, BackupSet, BackupSettingsState, BackupStarted, BackupVerification } from '../../../shared/backup.ts';
import type { StrataClient } from '../../../shared/bridge.ts';
import { toShownError, type ShownError } from './errors.ts';

export class DomainBackups {
  readonly hostId: string;
  readonly domain: string;
  sets = $state.raw<BackupSet[]>([]);
  error = $state.raw<ShownError | null>(null);
  loaded = $state(false);
  readonly #client: StrataClient;

  constructor(client: StrataClient, hostId: string, domain: string) {
    this.#client = client;
    this.hostId = hostId;
    this.domain = domain;
  }

  /** Reads the sets now and on every change; returns what stops following. */
  follow(): () => void {
    void this.load();
    return this.#client.on('backup.changed', (d) => {
      if (d.hostId === this.hostId && d.domain === this.domain) void this.load();
    });
  }

  async load(): Promise<void> {
    try {
      this.sets = (await this.#client.call('backup.list', { hostId: this.hostId, domain: this.domain })).filter((s) => s.domain === this.domain);
      this.error = null;
    } catch (err) {
      this.error = toShownError(err);
    } finally {
      this.loaded = true;
    }
  }

  preview(kind: 'auto' | 'full'): Promise<BackupPlan> {
    return this.#client.call('backup.preview', { hostId: this.hostId, domain: this.domain, kind });
  }

  start(kind: 'auto' | 'full', bandwidthBytesPerSec: number): Promise<BackupStarted> {
    return this.#client.call('backup.start', { hostId: this.hostId, domain: this.domain, kind, bandwidthBytesPerSec });
  }

  restore(setId: string, point: number, disk: string, destination: string): Promise<BackupResults['backup.restore']> {
    return this.#client.call('backup.restore', { hostId: this.hostId, domain: this.domain, setId, point, disk, destination });
  }

  verify(setId: string): Promise<BackupVerification> {
    return this.#client.call('backup.verify', { hostId: this.hostId, domain: this.domain, setId });
  }

  async remove(setId: string): Promise<void> {
    await this.#client.call('backup.remove', { hostId: this.hostId, domain: this.domain, setId, confirm: ['delete-files'] });
    await this.load();
  }
}

/**
 * The host's backup folder (with its free space) and one domain's retention and schedule (with
 * its next and last run). Read again when the server says they changed, and when a set of the
 * domain changed: a backup takes room in the folder, and a scheduled one moves the next run.
 */
export class DomainBackupSettings {
  readonly hostId: string;
  readonly domain: string;
  state = $state.raw<BackupSettingsState | null>(null);
  error = $state.raw<ShownError | null>(null);
  readonly #client: StrataClient;
  // Only the latest read counts: an older answer arriving late must not replace a newer one.
  #sequence = 0;

  constructor(client: StrataClient, hostId: string, domain: string) {
    this.#client = client;
    this.hostId = hostId;
    this.domain = domain;
  }

  /** Reads the settings now and on every change; returns what stops following. */
  follow(): () => void {
    void this.load();
    const stops = [
      this.#client.on('backup.settingsChanged', (d) => {
        if (d.hostId === this.hostId && (d.domain === null || d.domain === this.domain)) void this.load();
      }),
      this.#client.on('backup.changed', (d) => {
        if (d.hostId === this.hostId && d.domain === this.domain) void this.load();
      }),
    ];
    return () => stops.forEach((stop) => stop());
  }

  async load(): Promise<void> {
    const mine = ++this.#sequence;
    try {
      const state = await this.#client.call('backup.settings', { hostId: this.hostId, domain: this.domain });
      if (mine !== this.#sequence) return;
      this.state = state;
      this.error = null;
    } catch (err) {
      if (mine === this.#sequence) this.error = toShownError(err);
    }
  }

  async setLocation(path: string): Promise<void> {
    await this.#client.call('backup.setLocation', { hostId: this.hostId, path });
    await this.load();
  }

  async setRetention(keepSets: number | null, keepDays: number | null): Promise<void> {
    await this.#client.call('backup.setRetention', { hostId: this.hostId, domain: this.domain, keepSets, keepDays });
    await this.load();
  }

  async setSchedule(schedule: BackupSchedule | null): Promise<void> {
    await this.#client.call('backup.setSchedule', { hostId: this.hostId, domain: this.domain, schedule });
    await this.load();
  }
}

const weekdays = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

export function weekdayName(day: number): string {
  return weekdays[day] ?? `day ${day}`;
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[n % 10] ?? 'th';
  return `${n}${suffix}`;
}

/** "Daily at 03:00, a full backup every 7th run, incremental otherwise". */
export function scheduleWords(s: BackupSchedule): string {
  const when = s.every === 'day' ? `Daily at ${s.at}` : `Weekly on ${weekdayName(s.weekday)} at ${s.at}`;
  return s.fullEvery === 1 ? `${when}, every run full` : `${when}, a full backup every ${ordinal(s.fullEvery)} run, incremental otherwise`;
}

/** What a retention keeps, as the summary says it. */
export function retentionWords(keepSets: number | null, keepDays: number | null): string {
  const sets = keepSets === null ? null : keepSets === 1 ? 'the last good set' : `the last ${keepSets} good sets`;
  const days = keepDays === null ? null : keepDays === 1 ? 'the good sets of the last day' : `the good sets of the last ${keepDays} days`;
  if (sets && days) return `${sets}, and older ones while they are from the last ${keepDays === 1 ? 'day' : `${keepDays} days`} (a set goes only when both let it go)`;
  return sets ?? days ?? 'every good set';
}
