// What the parts of the backup engine share: the host they run on, the backups being written (one
// per domain of a host at most), the backup folder of each host, and the events telling the window
// a set changed.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { backupRefusal, backupRemote, type BackupPoint, type BackupSettingsView } from '../../../shared/backup.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { Job } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import type { EventHub } from '../api/event-hub.ts';
import type { Host } from '../hosts/host.ts';
import type { RemoteShell } from '../hosts/ssh/remote-shell.ts';
import { localFiles, RemoteFiles, type BackupFiles } from './files.ts';
import { makeTraversable } from '../lab/images.ts';
import { BackupSettings } from './settings.ts';
import { BackupStore } from './store.ts';

export interface BackupsEnv {
  hub: EventHub;
  /** The hosts scheduled backups may run on. */
  hosts: () => BackupHost[];
  /** Strata's data folder; undefined: settings are kept for this run only. */
  dataDir: string | undefined;
  /** Commands on a qemu+ssh host, for its sets' files; absent, remote hosts keep no backups. */
  remoteShell?: (hostId: string, uri: string) => Promise<RemoteShell>;
}

/** What a backup needs of a host. */
export type BackupHost = Pick<Host, 'id' | 'uri' | 'label' | 'readOnly' | 'jobs' | 'getDomain' | 'info' | 'abort' | 'offlineRecovered' | 'startOfflineOwn' | 'startOwn' | 'othersUsing' | 'listDomains' | 'setSpeed'> & { readonly libvirt: LibvirtConnection | null };

/** A point being written: its jobs, and those of them that ended. */
export interface Running {
  hostId: string;
  domain: string;
  setId: string;
  point: number;
  checkpoint: string;
  jobIds: Set<string>;
  ended: Map<string, Job>;
  host: BackupHost;
  store: BackupStore;
  /** A shut-off domain's backup, run by qemu-storage-daemon: no checkpoint, no libvirt job statistics. */
  offline: boolean;
  /** Its jobs are still being started: an end seen now is kept until all are known. */
  launching: boolean;
  /** Its jobs wait in the host's queue: libvirt has not been asked for anything yet. */
  queued?: boolean;
}

/** The default backup folder of a host on this machine. */
export function defaultBackupRoot(dataDir: string | undefined, uri: string): string {
  if (process.env['STRATA_BACKUP_DIR']) return process.env['STRATA_BACKUP_DIR'];
  // QEMU of the system instance runs as its own user and must reach the folder: a root-run
  // Strata's data folder is in root's private home, so it uses libvirt's images folder instead.
  const system = !uri.includes('/session');
  if (system && process.getuid?.() === 0) return '/var/lib/libvirt/images/strata-backups';
  return join(dataDir ?? '/var/tmp', 'backups');
}

export class BackupContext {
  readonly env: BackupsEnv;
  readonly settings: BackupSettings;
  /** Backups being written, keyed by runningKey: one per domain of a host at most. */
  readonly running = new Map<string, Running>();
  /** Backups being recorded, not yet in `running`, keyed like it. */
  readonly claimed = new Set<string>();

  constructor(env: BackupsEnv) {
    this.env = env;
    this.settings = new BackupSettings(env.dataDir);
  }

  static runningKey(hostId: string, domain: string): string {
    return `${hostId}/${domain}`;
  }

  isRunning(hostId: string, domain: string): boolean {
    const key = BackupContext.runningKey(hostId, domain);
    return this.running.has(key) || this.claimed.has(key);
  }

  async location(host: BackupHost): Promise<BackupSettingsView> {
    const set = await this.settings.location(host.uri);
    const onHost = backupRemote(host.uri);
    if (set !== null) return { hostId: host.id, location: set, source: 'set', onHost };
    // A remote host's folder must be one its libvirt (QEMU, as whichever user it runs) can write:
    // only the user knows which, so there is no default there.
    if (onHost !== null) return { hostId: host.id, location: '', source: 'unset', onHost };
    return { hostId: host.id, location: defaultBackupRoot(this.env.dataDir, host.uri), source: 'default', onHost };
  }

  async setLocation(host: BackupHost, path: string): Promise<BackupSettingsView> {
    this.refuseRemote(host, false);
    if (backupRemote(host.uri) === null && this.env.dataDir !== undefined && (path === this.env.dataDir || path.startsWith(`${this.env.dataDir}/`)) && path !== join(this.env.dataDir, 'backups')) {
      throw new StrataError('invalid-request', `${path} is inside Strata's data folder, which holds Strata's own files`, {
        hint: `Choose a folder outside it, or ${join(this.env.dataDir, 'backups')}.`,
      });
    }
    await this.settings.setLocation(host.uri, path);
    return this.location(host);
  }

  /** The host's sets: on this machine, or on the remote host over its ssh. */
  async store(host: BackupHost): Promise<BackupStore> {
    const location = await this.location(host);
    if (location.source === 'unset') throw this.#unset(host);
    return new BackupStore(location.location, await this.files(host));
  }

  async files(host: BackupHost): Promise<BackupFiles> {
    if (backupRemote(host.uri) === null) return localFiles;
    if (!this.env.remoteShell) throw new StrataError('unavailable', `${host.label} is remote, and this Strata cannot run commands on it over SSH`);
    return new RemoteFiles(await this.env.remoteShell(host.id, host.uri));
  }

  #unset(host: BackupHost): StrataError {
    return new StrataError('conflict', `${host.label} has no backup folder yet: ${remoteFolderWanted(backupRemote(host.uri) ?? host.label)}`, {
      hint: 'Set it in the backup settings (backup.setLocation).',
    });
  }

  changed(hostId: string, domain: string, setId: string, point: number | null, status: BackupPoint['status'] | 'removed'): void {
    this.env.hub.emit('backup.changed', { hostId, domain, setId, point, status });
  }

  // QEMU of the system instance runs as its own user: every folder on the way must let it in.
  async prepareRoot(host: BackupHost, store: BackupStore): Promise<void> {
    const root = store.root;
    try {
      // On a remote host the user chose the folder for its QEMU: it is made, its parents left as they are.
      if (store.files.remote !== null) await store.files.makeFolders(root);
      else if (host.uri.includes('/session')) await mkdir(root, { recursive: true, mode: 0o755 });
      else await makeTraversable(root);
    } catch (err) {
      throw new StrataError('conflict', `cannot use ${root}${store.files.remote ? ` on ${store.files.remote}` : ''} for backups: ${err instanceof Error ? err.message : String(err)}`, {
        hint: 'Choose another folder with backup.setLocation.',
      });
    }
  }

  /** Refuses a host that cannot keep backups (and, `needsFolder`, a remote one with no folder chosen). */
  refuseRemote(host: BackupHost, needsFolder = true): void {
    const why = backupRefusal(host.uri);
    if (why !== null) {
      throw new StrataError('conflict', `${host.label} cannot keep backups: ${why}`, {
        hint: 'Connect it as qemu+ssh://, or back up from a Strata running on that host.',
      });
    }
    if (needsFolder && backupRemote(host.uri) !== null && !this.env.remoteShell) {
      throw new StrataError('unavailable', `${host.label} is remote, and this Strata cannot run commands on it over SSH`);
    }
  }
}

/** What a remote host without a backup folder needs. */
export function remoteFolderWanted(where: string): string {
  return `choose a folder on ${where} that its libvirt's QEMU can write (for qemu:///system, one under /var/lib/libvirt/images; for a session, one in that user's home): Strata has no default there`;
}
