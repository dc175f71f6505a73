// One domain's backup sets as the window shows them: read once, read again whenever the server
// says a set of that domain changed (a backup began or ended, retention or a user removed a set).
import type { BackupPlan, BackupResults, BackupSet, BackupStarted, BackupVerification } from '../../../shared/backup.ts';
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
