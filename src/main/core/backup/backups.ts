// Backups of running domains: push-mode virDomainBackupBegin with a checkpoint created atomically
// with it, so the next backup can be incremental. libvirt 9.0 runs a push backup as a block job of
// each disk (virDomainGetBlockJobInfo shows it, virDomainBlockJobSetSpeed throttles it while it
// runs, virDomainBlockJobAbort cancels it, and block-job events end it, all measured here), so a
// backup is followed by the host's JobTracker like every other job: it is in jobs.list and the
// history with type 'backup', with progress, rate, abort and the bandwidth slider. This module
// asks libvirt for the backup, keeps its set on disk, and settles the set when the jobs end.
import { statfsSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { backupRefusal, type BackupPlan, type BackupPoint, type BackupResults, type BackupScheduleView, type BackupSet, type BackupSettingsView } from '../../../shared/backup.ts';
import type { ValidParams } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { DomainDetail, Job, JobEvent } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { toStrataError } from '../../libvirt/errors.ts';
import { escapeXml } from '../../libvirt/xml.ts';
import { log } from '../../log/logger.ts';
import type { EventHub } from '../api/event-hub.ts';
import { measureCopy, qemuImgMessage, runQemuImg } from '../health/qemu-img.ts';
import type { Host } from '../hosts/host.ts';
import { makeTraversable } from '../lab/images.ts';
import { manifestFormat, type Manifest } from './manifest.ts';
import { restorePoint, verifySet } from './restore.ts';
import { dueRun, nextDue } from './schedule.ts';
import { BackupSettings } from './settings.ts';
import { BackupStore, imageFileName, setsToRemove } from './store.ts';
import { strataVersion } from './version.ts';

export interface BackupsEnv {
  hub: EventHub;
  /** The hosts scheduled backups may run on. */
  hosts: () => BackupHost[];
  /** Strata's data folder; undefined: settings are kept for this run only. */
  dataDir: string | undefined;
}

/** What a backup needs of a host. */
export type BackupHost = Pick<Host, 'id' | 'uri' | 'label' | 'readOnly' | 'jobs' | 'getDomain' | 'info' | 'startOfflineBackup' | 'abort'> & { readonly libvirt: LibvirtConnection | null };

interface Running {
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

function diskXml(disks: readonly string[], all: readonly string[], yes: string, no: string): string {
  return all.map((d) => `<disk name='${escapeXml(d)}' ${disks.includes(d) ? yes : no}/>`).join('');
}

/** A checkpoint's dirty data per disk, where libvirt's XML carries it (VIR_DOMAIN_CHECKPOINT_XML_SIZE). */
function dirtyBytes(checkpointXml: string, disks: readonly string[]): Map<string, number | null> {
  const out = new Map<string, number | null>();
  for (const tag of checkpointXml.match(/<disk\b[^>]*>/g) ?? []) {
    const name = /\bname=['"]([^'"]+)['"]/.exec(tag)?.[1];
    const size = /\bsize=['"](\d+)['"]/.exec(tag)?.[1];
    if (name !== undefined && disks.includes(name)) out.set(name, size === undefined ? null : Number(size));
  }
  return new Map(disks.map((d) => [d, out.get(d) ?? null]));
}

function freeBytesAt(folder: string): number | null {
  for (let dir = folder; ; dir = dirname(dir)) {
    try {
      const fs = statfsSync(dir);
      return fs.bavail * fs.bsize;
    } catch {
      // Not made yet: its parent's file system is where it will be.
      if (dir === dirname(dir)) return null;
    }
  }
}

export class Backups {
  readonly #env: BackupsEnv;
  readonly #settings: BackupSettings;
  /** Backups being written, one per domain of a host at most. */
  readonly #running = new Map<string, Running>();
  #unsubscribe: (() => void) | null = null;
  #scheduleTimer: NodeJS.Timeout | null = null;
  #ticking = false;
  /** Hosts whose backup folder holds no point left running by an earlier Strata. */
  readonly #reconciled = new Set<string>();

  constructor(env: BackupsEnv) {
    this.#env = env;
    this.#settings = new BackupSettings(env.dataDir);
  }

  async location(host: BackupHost): Promise<BackupSettingsView> {
    const set = await this.#settings.location(host.uri);
    return { hostId: host.id, location: set ?? defaultBackupRoot(this.#env.dataDir, host.uri), source: set === null ? 'default' : 'set' };
  }

  async setLocation(host: BackupHost, path: string): Promise<BackupSettingsView> {
    this.#refuseRemote(host);
    if (this.#env.dataDir !== undefined && (path === this.#env.dataDir || path.startsWith(`${this.#env.dataDir}/`)) && path !== join(this.#env.dataDir, 'backups')) {
      throw new StrataError('invalid-request', `${path} is inside Strata's data folder, which holds Strata's own files`, {
        hint: `Choose a folder outside it, or ${join(this.#env.dataDir, 'backups')}.`,
      });
    }
    await this.#settings.setLocation(host.uri, path);
    return this.location(host);
  }

  async setRetention(host: BackupHost, p: ValidParams<'backup.setRetention'>): Promise<BackupResults['backup.setRetention']> {
    await this.#settings.setRetention(host.uri, p.domain, { keepSets: p.keepSets, keepDays: p.keepDays });
    return { domain: p.domain, keepSets: p.keepSets, keepDays: p.keepDays };
  }

  async #store(host: BackupHost): Promise<BackupStore> {
    return new BackupStore((await this.location(host)).location);
  }

  async list(host: BackupHost, domain?: string): Promise<BackupSet[]> {
    this.#refuseRemote(host);
    return (await this.#store(host)).list(domain);
  }

  async plan(host: BackupHost, p: ValidParams<'backup.preview'>): Promise<BackupPlan> {
    this.#refuseRemote(host);
    const detail = await host.getDomain(p.domain);
    const disks = this.#chosenDisks(detail, p.disks);
    const store = await this.#store(host);
    // The dirty data is computed by QEMU (it reads the block nodes): asked only of a running domain
    // with no job on any disk, as QEMU 7.2 crashes reading block nodes while a block job ends.
    const quiet =
      (detail.state === 'running' || detail.state === 'paused') &&
      !this.#running.has(`${host.id}/${detail.name}`) &&
      detail.disks.every((d) => host.jobs.occupying(detail.name, d.target) === undefined);
    const decision = await this.#decide(host, store, detail, disks, p.kind, quiet);
    const folder = decision.setId === null ? store.domainFolder(p.domain) : store.setFolder(p.domain, decision.setId);
    const diskBytes = disks.map((disk) => ({ disk, bytes: decision.dirtyBytes?.get(disk) ?? null }));
    if (decision.kind === 'full') {
      for (const entry of diskBytes) {
        const top = detail.disks.find((d) => d.target === entry.disk)?.chain[0];
        try {
          entry.bytes = top ? await measureCopy(top.path, top.format, 'qcow2') : 0;
        } catch (err) {
          log.debug('cannot measure a disk for a backup preview', { host: host.id, domain: p.domain, disk: entry.disk, err });
        }
      }
    }
    const bytesToWrite = diskBytes.every((d) => d.bytes !== null) ? diskBytes.reduce((sum, d) => sum + (d.bytes ?? 0), 0) : null;
    return {
      domain: p.domain,
      disks,
      kind: decision.kind,
      reason: decision.reason,
      setId: decision.setId,
      folder,
      bytesToWrite,
      diskBytes,
      freeBytes: freeBytesAt(folder),
      bandwidth: 'live',
      refused: this.#whyRefused(host, detail, disks),
    };
  }

  #chosenDisks(detail: DomainDetail, asked: readonly string[] | undefined): string[] {
    const backable = detail.disks.filter((d) => d.device === 'disk' && d.chain.length > 0 && d.chain[0]?.type === 'file').map((d) => d.target);
    if (asked === undefined) {
      if (backable.length === 0) throw new StrataError('conflict', `${detail.name} has no disk image Strata can back up`);
      return backable;
    }
    for (const d of asked) {
      if (!backable.includes(d)) {
        throw new StrataError('invalid-request', `${detail.name} has no disk '${d}' that can be backed up`, { hint: `Its disks that can: ${backable.join(', ') || 'none'}.` });
      }
    }
    return [...new Set(asked)];
  }

  #whyRefused(host: BackupHost, detail: DomainDetail, disks: readonly string[]): string | null {
    if (host.readOnly) return `${host.label} is connected read-only`;
    if (detail.state !== 'running' && detail.state !== 'paused' && detail.state !== 'shutoff') {
      return `${detail.name} is ${detail.state}: Strata backs up running domains through libvirt and shut-off ones through qemu-storage-daemon; start it or shut it down`;
    }
    if (this.#running.has(`${host.id}/${detail.name}`)) return `a backup of ${detail.name} is already running`;
    for (const disk of disks) {
      const busy = host.jobs.occupying(detail.name, disk);
      if (busy) return `${detail.name}/${disk} has a ${busy.type} job ${busy.phase}: a backup waits until the disk is free`;
    }
    const max = host.info().limits.maxConcurrentJobs;
    const taken = host.jobs.running().length + host.jobs.starting().length;
    if (max > 0 && taken + disks.length > max) return `${host.label} runs ${taken} of at most ${max} jobs: the backup needs room for ${disks.length}`;
    return null;
  }

  /** Full or incremental, and why: an incremental continues the newest good set from its last checkpoint. */
  async #decide(
    host: BackupHost,
    store: BackupStore,
    detail: DomainDetail,
    disks: readonly string[],
    kind: 'auto' | 'full',
    withSize = false,
  ): Promise<{ kind: 'full' | 'incremental'; reason: string; setId: string | null; from: string | null; dirtyBytes: Map<string, number | null> | null }> {
    const full = (reason: string) => ({ kind: 'full' as const, reason, setId: null, from: null, dirtyBytes: null });
    if (kind === 'full') return full('a full backup was asked for');
    if (detail.state === 'shutoff') {
      return full(`${detail.name} is shut off: qemu-storage-daemon copies its disks whole, and records no checkpoint (libvirt creates checkpoints only with a running QEMU), so the backup after it is full too`);
    }
    const sets = (await store.list(detail.name)).filter((s) => s.good && s.domain === detail.name);
    const last = sets[sets.length - 1];
    if (!last) return full(`no earlier backup of ${detail.name} is in ${store.domainFolder(detail.name)}`);
    if (last.domainUuid !== null && last.domainUuid !== detail.uuid) return full(`the newest set belongs to another domain of the same name (another UUID)`);
    const setDisks = last.disks.map((d) => d.target).sort();
    if (setDisks.join(',') !== [...disks].sort().join(',')) return full(`the newest set holds disks ${setDisks.join(', ')}, not ${disks.join(', ')}`);
    const point = [...last.points].reverse().find((p) => p.status === 'complete');
    if (!point) return full('the newest set has no complete backup');
    const conn = host.libvirt;
    if (!conn) throw new StrataError('unavailable', `${host.label} is not connected`);
    let checkpoints: { name: string; xml: string }[];
    try {
      const sized = withSize
        ? await conn.listAllCheckpoints(detail.name, { size: true }).catch((err: unknown) => {
            log.debug('libvirt gave no dirty data of the checkpoints', { host: host.id, domain: detail.name, err });
            return null;
          })
        : null;
      checkpoints = sized ?? (await conn.listAllCheckpoints(detail.name));
    } catch (err) {
      return full(`libvirt cannot list ${detail.name}'s checkpoints: ${toStrataError(err).message}`);
    }
    const found = checkpoints.find((c) => c.name === point.checkpoint);
    if (!found) return full(`libvirt has no checkpoint ${point.checkpoint} of the newest set (the domain was redefined, its checkpoints deleted, or that backup was taken while it was shut off)`);
    return {
      kind: 'incremental',
      reason: `changes since checkpoint ${point.checkpoint} (set ${last.id}, point ${point.index})`,
      setId: last.id,
      from: point.checkpoint,
      dirtyBytes: withSize ? dirtyBytes(found.xml, disks) : null,
    };
  }

  async setSchedule(host: BackupHost, p: ValidParams<'backup.setSchedule'>): Promise<BackupScheduleView> {
    this.#refuseRemote(host);
    const now = Date.now();
    await this.#settings.setSchedule(host.uri, p.domain, p.schedule, now);
    return { domain: p.domain, schedule: p.schedule, nextRunAt: p.schedule === null ? null : nextDue(p.schedule, now) };
  }

  /** Runs due schedules now and then every 20 s while Strata runs. */
  startSchedules(firstAfterMs = 2000): void {
    if (this.#scheduleTimer !== null) return;
    const tick = (): void => {
      void this.#tick().catch((err: unknown) => log.warn('the backup schedules could not be checked', { err }));
    };
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
  }

  async #tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      for (const host of this.#env.hosts()) {
        if (host.libvirt === null || host.readOnly || backupRefusal(host.uri) !== null || this.#reconciled.has(host.id)) continue;
        await this.#reconcile(host)
          .then((pending) => {
            if (!pending) this.#reconciled.add(host.id);
            // A backup still running that the tracker has not found yet: look again soon.
            else setTimeout(() => void this.#tick().catch(() => undefined), 1000).unref();
          })
          .catch((err: unknown) => log.warn('could not look for backups left running by an earlier Strata', { host: host.id, err }));
      }
      for (const entry of await this.#settings.schedules()) {
        const host = this.#env.hosts().find((h) => h.uri === entry.uri && !h.readOnly && h.libvirt !== null);
        if (!host) continue;
        const now = Date.now();
        const run = dueRun(entry, entry.lastRunAt, now);
        if (!run) continue;
        // Recorded before it starts: a run that cannot start is not tried again until the next time.
        await this.#settings.ran(entry.uri, entry.domain, now);
        const kind = entry.runs % entry.fullEvery === 0 ? 'full' : 'auto';
        const when = new Date(run.due).toISOString();
        const note = run.late ? `scheduled for ${when}, run late: Strata was not running then` : `scheduled for ${when}`;
        try {
          await this.start(host, { hostId: host.id, domain: entry.domain, kind, bandwidthBytesPerSec: 0 }, undefined, note);
        } catch (err) {
          log.warn('a scheduled backup could not start', { host: host.id, domain: entry.domain, due: when, late: run.late, err });
        }
      }
    } finally {
      this.#ticking = false;
    }
  }

  /**
   * Points left 'running' by a Strata that stopped while they were written: while libvirt still
   * runs the backup, the host's tracker follows its jobs (found as started elsewhere) and the
   * point is settled when they end, as if this Strata had started it; when libvirt runs none, the
   * point cannot be shown complete and is settled failed.
   */
  async #reconcile(host: BackupHost): Promise<boolean> {
    const conn = host.libvirt;
    if (!conn) return true;
    let pending = false;
    const store = await this.#store(host);
    for (const set of await store.list()) {
      for (const point of set.points) {
        if (point.status !== 'running' || this.#running.has(`${host.id}/${set.domain}`)) continue;
        const disks = point.images.map((i) => i.disk);
        const jobs = host.jobs.list().filter((j) => j.domain === set.domain && j.type === 'backup' && j.endedAt === null && disks.includes(j.disk));
        const running: Running = { hostId: host.id, domain: set.domain, setId: set.id, point: point.index, checkpoint: point.checkpoint, jobIds: new Set(jobs.map((j) => j.id)), ended: new Map(), host, store, offline: false, launching: false };
        if (jobs.length === disks.length) {
          this.#running.set(`${host.id}/${set.domain}`, running);
          this.#listen();
          log.info('following a backup an earlier Strata started', { host: host.id, domain: set.domain, set: set.id, point: point.index });
          continue;
        }
        let stats = null;
        try {
          stats = await conn.jobStats(set.domain);
        } catch (err) {
          // The domain is gone: nothing runs the backup any more.
          log.debug('no job statistics for a domain with a backup left running', { host: host.id, domain: set.domain, err });
        }
        // Still running, but not yet found by the tracker: the next check adopts it.
        if (stats !== null && stats.operation === 'backup' && (stats.type === 'bounded' || stats.type === 'unbounded')) {
          pending = true;
          continue;
        }
        // Ended while no Strata followed it: libvirt keeps the last job's statistics until read.
        const last = await conn.jobStats(set.domain, { completed: true, keepCompleted: true }).catch(() => null);
        const completed = last !== null && last.operation === 'backup' && last.type === 'completed';
        const status = completed
          ? await this.#settle(running, 'complete', null, true, last.dataProcessedBytes)
          : await this.#settle(running, 'failed', 'Strata stopped while it was written, and libvirt no longer runs it nor says it completed', true);
        this.#changed(host.id, set.domain, set.id, point.index, status);
      }
    }
    return pending;
  }

  async start(host: BackupHost, p: ValidParams<'backup.start'>, fullBecause?: string, note?: string): Promise<BackupResults['backup.start']> {
    this.#refuseRemote(host);
    const detail = await host.getDomain(p.domain);
    const disks = this.#chosenDisks(detail, p.disks);
    const refused = this.#whyRefused(host, detail, disks);
    if (refused) throw new StrataError('conflict', `Not started: ${refused}`);
    const conn = host.libvirt;
    if (!conn) throw new StrataError('unavailable', `${host.label} is not connected`);
    const store = await this.#store(host);
    await this.#prepareRoot(host, store.root);
    const decided = fullBecause ? { kind: 'full' as const, reason: fullBecause, setId: null, from: null, dirtyBytes: null } : await this.#decide(host, store, detail, disks, p.kind);
    const decision = note === undefined ? decided : { ...decided, reason: `${note}; ${decided.reason}` };
    const now = Date.now();
    let setId: string;
    let index: number;
    let previous: Map<string, string> = new Map();
    if (decision.setId === null) {
      index = 0;
      const manifest: Manifest = {
        format: manifestFormat,
        version: 1,
        strataVersion,
        hostUri: host.uri,
        domain: { name: detail.name, uuid: detail.uuid },
        createdAt: now,
        disks: detail.disks
          .filter((d) => disks.includes(d.target))
          .map((d) => ({ target: d.target, virtualBytes: d.chain[0]?.sizes?.capacity ?? null, sourcePath: d.chain[0]?.path ?? null })),
        points: [],
      };
      setId = await store.create(manifest);
    } else {
      setId = decision.setId;
      const { manifest } = await store.get(detail.name, setId);
      index = Math.max(...manifest.points.map((q) => q.index)) + 1;
      const base = [...manifest.points].reverse().find((q) => q.status === 'complete');
      previous = new Map(base?.images.map((i) => [i.disk, i.file]) ?? []);
    }
    const folder = store.setFolder(detail.name, setId);
    const checkpoint = `strata-${setId}-${index}`;
    const kind = decision.kind;
    const point: BackupPoint = {
      index,
      kind,
      checkpoint,
      startedAt: now,
      endedAt: null,
      status: 'running',
      reason: decision.reason,
      dataBytes: null,
      images: disks.map((disk) => ({ disk, file: imageFileName(disk, index, kind), format: 'qcow2', backingFile: previous.get(disk) ?? null, bytes: null })),
    };
    // The point is on disk as 'running' before libvirt writes anything: a crash leaves it listed as not good.
    await store.update(detail.name, setId, (m) => m.points.push(point));
    const all = detail.disks.map((d) => d.target);
    const backupXml =
      `<domainbackup mode='push'>${decision.from ? `<incremental>${escapeXml(decision.from)}</incremental>` : ''}<disks>` +
      all
        .map((d) =>
          disks.includes(d)
            ? `<disk name='${escapeXml(d)}' backup='yes' type='file'><target file='${escapeXml(join(folder, imageFileName(d, index, kind)))}'/><driver type='qcow2'/></disk>`
            : `<disk name='${escapeXml(d)}' backup='no'/>`,
        )
        .join('') +
      `</disks></domainbackup>`;
    const checkpointXml = `<domaincheckpoint><name>${escapeXml(checkpoint)}</name><disks>${diskXml(disks, all, "checkpoint='bitmap'", "checkpoint='no'")}</disks></domaincheckpoint>`;

    if (detail.state === 'shutoff') return this.#startOffline(host, store, detail, disks, setId, point, p.bandwidthBytesPerSec);
    const requested = disks.map((disk) => host.jobs.request(detail.name, disk, 'backup', { requestedBandwidthBytesPerSec: p.bandwidthBytesPerSec }));
    const running: Running = {
      hostId: host.id,
      domain: detail.name,
      setId,
      point: index,
      checkpoint,
      jobIds: new Set(requested.map((j) => j.id)),
      ended: new Map(),
      host,
      store,
      offline: false,
      launching: false,
    };
    const key = `${host.id}/${detail.name}`;
    this.#running.set(key, running);
    this.#listen();
    try {
      await conn.backupBegin(detail.name, backupXml, checkpointXml);
    } catch (err) {
      const e = toStrataError(err, `Could not start a backup of ${detail.name}`);
      this.#running.delete(key);
      for (const job of requested) host.jobs.fail(job.id, `could not start: ${e.message}`);
      this.#changed(host.id, detail.name, setId, index, await this.#settle(running, 'failed', `libvirt refused it: ${e.message}`, false));
      if (kind === 'incremental') {
        log.warn('libvirt refused an incremental backup; taking a full one instead', { host: host.id, domain: detail.name, err });
        return this.start(host, { ...p, kind: 'full' }, `libvirt refused the incremental from ${decision.from}: ${e.message}`, note);
      }
      throw e;
    }
    // libvirt's backup XML has no bandwidth: the limit is set on each disk's block job once it runs.
    if (p.bandwidthBytesPerSec > 0) {
      for (const disk of disks) {
        await conn.blockJobSetSpeed(detail.name, disk, p.bandwidthBytesPerSec).catch((err: unknown) => {
          log.warn('could not limit a backup just started; it runs unlimited', { host: host.id, domain: detail.name, disk, err });
        });
      }
    }
    const jobs = disks.map((disk) => host.jobs.begin(detail.name, disk, 'backup', { bandwidthBytesPerSec: p.bandwidthBytesPerSec, requestedBandwidthBytesPerSec: p.bandwidthBytesPerSec }));
    const { set } = await store.get(detail.name, setId);
    this.#changed(host.id, detail.name, setId, index, 'running');
    log.info('backup started', { host: host.id, domain: detail.name, set: setId, point: index, kind, reason: decision.reason });
    return { set, point: set.points.find((q) => q.index === index) ?? point, jobs };
  }

  /** Each disk copied whole by the offline engine into the point's image, one job per disk. */
  async #startOffline(host: BackupHost, store: BackupStore, detail: DomainDetail, disks: readonly string[], setId: string, point: BackupPoint, bandwidthBytesPerSec: number): Promise<BackupResults['backup.start']> {
    const folder = store.setFolder(detail.name, setId);
    const running: Running = { hostId: host.id, domain: detail.name, setId, point: point.index, checkpoint: point.checkpoint, jobIds: new Set(), ended: new Map(), host, store, offline: true, launching: true };
    const key = `${host.id}/${detail.name}`;
    this.#running.set(key, running);
    this.#listen();
    const jobs: Job[] = [];
    try {
      for (const image of point.images) {
        const disk = detail.disks.find((d) => d.target === image.disk);
        if (!disk) throw new StrataError('conflict', `${detail.name} has no disk ${image.disk} any more`);
        const job = await host.startOfflineBackup(detail.name, disk, join(folder, image.file), bandwidthBytesPerSec);
        running.jobIds.add(job.id);
        jobs.push(job);
      }
    } catch (err) {
      const e = toStrataError(err, `Could not start a backup of ${detail.name}`);
      if (jobs.length === 0) {
        this.#running.delete(key);
        this.#changed(host.id, detail.name, setId, point.index, await this.#settle(running, 'failed', `the offline engine refused it: ${e.message}`, false));
        throw e;
      }
      // The disks already started are stopped: their ends settle the point as failed.
      for (const job of jobs) await host.abort(detail.name, job.disk).catch(() => undefined);
      running.launching = false;
      this.#maybeFinish(key, running);
      throw e;
    }
    running.launching = false;
    this.#maybeFinish(key, running);
    const { set } = await store.get(detail.name, setId);
    this.#changed(host.id, detail.name, setId, point.index, 'running');
    log.info('backup started', { host: host.id, domain: detail.name, set: setId, point: point.index, kind: point.kind, engine: 'qemu-storage-daemon' });
    return { set, point: set.points.find((q) => q.index === point.index) ?? point, jobs };
  }

  #listen(): void {
    this.#unsubscribe ??= this.#env.hub.on((event, data) => {
      if (event === 'job') this.#jobEvent(data as JobEvent);
    });
  }

  #jobEvent(job: JobEvent): void {
    if (job.transition !== 'ended' || job.type !== 'backup') return;
    for (const [key, running] of this.#running) {
      const ours = running.jobIds.has(job.id) || (running.launching && job.hostId === running.hostId && job.domain === running.domain);
      if (!ours || running.ended.has(job.id)) continue;
      running.ended.set(job.id, job);
      this.#maybeFinish(key, running);
      return;
    }
  }

  #maybeFinish(key: string, running: Running): void {
    if (running.launching || ![...running.jobIds].every((id) => running.ended.has(id))) return;
    if (this.#running.get(key) !== running) return;
    this.#running.delete(key);
    if (this.#running.size === 0) {
      this.#unsubscribe?.();
      this.#unsubscribe = null;
    }
    void this.#finish(running).catch((err: unknown) => log.error('could not settle a backup set', { host: running.hostId, domain: running.domain, set: running.setId, err }));
  }

  async #finish(running: Running): Promise<void> {
    const jobs = [...running.ended.values()].filter((j) => running.jobIds.has(j.id));
    const conn = running.offline ? null : running.host.libvirt;
    let stats = null;
    try {
      stats = conn ? await conn.jobStats(running.domain, { completed: true }) : null;
    } catch (err) {
      log.debug('no completed job statistics for a backup', { host: running.hostId, domain: running.domain, err });
    }
    // A job whose end event was lost is 'unknown' to the tracker: libvirt's completed statistics tell.
    const allCompleted = jobs.every((j) => j.phase === 'completed' || (j.phase === 'unknown' && stats?.type === 'completed' && stats.operation === 'backup'));
    if (allCompleted) {
      const processed = stats?.dataProcessedBytes ?? (typeof stats?.raw['disk_processed'] === 'number' ? stats.raw['disk_processed'] : null);
      const status = await this.#settle(running, 'complete', null, true, processed);
      if (status === 'complete') await this.#applyRetention(running);
      this.#changed(running.hostId, running.domain, running.setId, running.point, status);
      return;
    }
    const cancelled = jobs.some((j) => j.phase === 'cancelled');
    const why = stats?.errorMessage ?? jobs.find((j) => j.phase !== 'completed')?.outcome ?? 'ended without completing';
    this.#changed(running.hostId, running.domain, running.setId, running.point, await this.#settle(running, cancelled ? 'cancelled' : 'failed', cancelled ? 'aborted before it completed' : why, !running.offline));
  }

  #changed(hostId: string, domain: string, setId: string, point: number | null, status: BackupPoint['status'] | 'removed'): void {
    this.#env.hub.emit('backup.changed', { hostId, domain, setId, point, status });
  }

  /**
   * Writes the point's end into the manifest. A complete incremental first gets the previous
   * point's image as its backing file: libvirt names the disk's live image there, which a restore
   * must never read. Anything else loses its files and its checkpoint, so the next backup starts
   * from the last good one.
   */
  async #settle(running: Running, status: BackupPoint['status'], reason: string | null, began: boolean, dataBytes: number | null = null): Promise<BackupPoint['status']> {
    const { store, domain, setId } = running;
    const folder = store.setFolder(domain, setId);
    const { manifest } = await store.get(domain, setId);
    const point = manifest.points.find((q) => q.index === running.point);
    if (!point) return status;
    const sizes = new Map<string, number>();
    if (status === 'complete') {
      try {
        for (const image of point.images) {
          if (image.backingFile !== null) {
            const run = await runQemuImg(['rebase', '-u', '-f', 'qcow2', '-b', image.backingFile, '-F', 'qcow2', join(folder, image.file)], 60_000);
            if (run.code !== 0) throw new Error(`qemu-img rebase of ${image.file}: ${qemuImgMessage(run)}`);
          }
          sizes.set(image.file, (await stat(join(folder, image.file))).size);
        }
      } catch (err) {
        status = 'failed';
        reason = `its images could not be put in order: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    if (status !== 'complete') {
      for (const image of point.images) await rm(join(folder, image.file), { force: true });
      const conn = running.host.libvirt;
      if (began && conn) {
        await conn.checkpointDelete(domain, running.checkpoint).catch((err: unknown) => {
          log.debug('could not delete the checkpoint of a backup that did not complete', { host: running.hostId, domain, checkpoint: running.checkpoint, err });
        });
      }
    }
    const endedAt = Date.now();
    await store.update(domain, setId, (m) => {
      const q = m.points.find((x) => x.index === running.point);
      if (!q) return;
      q.status = status;
      q.endedAt = endedAt;
      if (status !== 'complete') q.reason = reason;
      q.dataBytes = dataBytes;
      for (const image of q.images) image.bytes = sizes.get(image.file) ?? null;
    });
    log[status === 'complete' ? 'info' : 'warn'](`backup ${status}`, { host: running.hostId, domain, set: setId, point: running.point, reason });
    this.#env.hub.emit('domain.changed', { hostId: running.hostId, domain });
    return status;
  }

  async #applyRetention(running: Running): Promise<void> {
    const retention = await this.#settings.retention(running.host.uri, running.domain);
    const sets = (await running.store.list(running.domain)).filter((s) => s.domain === running.domain);
    for (const set of setsToRemove(sets, retention, Date.now())) {
      await this.#removeSet(running.host, running.store, set).catch((err: unknown) => log.warn('retention could not remove a backup set', { host: running.hostId, set: set.id, err }));
    }
  }

  async #removeSet(host: BackupHost, store: BackupStore, set: BackupSet): Promise<void> {
    await store.remove(set.domain, set.id);
    this.#changed(host.id, set.domain, set.id, null, 'removed');
    const conn = host.libvirt;
    if (!conn) return;
    // Its checkpoints are no longer the start of any backup Strata keeps.
    let known: string[] = [];
    try {
      known = (await conn.listAllCheckpoints(set.domain)).map((c) => c.name);
    } catch {
      // A domain that is gone has no checkpoints left to delete.
      return;
    }
    for (const point of set.points) {
      if (!known.includes(point.checkpoint)) continue;
      await conn.checkpointDelete(set.domain, point.checkpoint).catch((err: unknown) => log.debug('could not delete a checkpoint of a removed set', { host: host.id, checkpoint: point.checkpoint, err }));
    }
  }

  async remove(host: BackupHost, p: ValidParams<'backup.remove'>): Promise<{ removed: string }> {
    this.#refuseRemote(host);
    if (!p.confirm.includes('delete-files')) {
      throw new StrataError('conflict', `removing set ${p.setId} deletes its images`, { hint: "Send confirm: ['delete-files'] to remove it." });
    }
    const store = await this.#store(host);
    const { set } = await store.get(p.domain, p.setId);
    if (set.points.some((q) => q.status === 'running') && this.#running.has(`${host.id}/${p.domain}`)) {
      throw new StrataError('conflict', `a backup into set ${p.setId} is running`, { hint: 'Abort it or wait for it to end first.' });
    }
    await this.#removeSet(host, store, set);
    return { removed: p.setId };
  }

  async restore(host: BackupHost, p: ValidParams<'backup.restore'>): Promise<{ path: string; bytes: number }> {
    this.#refuseRemote(host);
    const store = await this.#store(host);
    const { manifest } = await store.get(p.domain, p.setId);
    return restorePoint(store.setFolder(p.domain, p.setId), manifest, p.point, p.disk, p.destination);
  }

  async verify(host: BackupHost, p: ValidParams<'backup.verify'>): Promise<BackupResults['backup.verify']> {
    this.#refuseRemote(host);
    const store = await this.#store(host);
    const { manifest } = await store.get(p.domain, p.setId);
    return verifySet(p.setId, store.setFolder(p.domain, p.setId), manifest);
  }

  // QEMU of the system instance runs as its own user: every folder on the way must let it in.
  async #prepareRoot(host: BackupHost, root: string): Promise<void> {
    try {
      if (host.uri.includes('/session')) await mkdir(root, { recursive: true, mode: 0o755 });
      else await makeTraversable(root);
    } catch (err) {
      throw new StrataError('conflict', `cannot use ${root} for backups: ${err instanceof Error ? err.message : String(err)}`, {
        hint: 'Choose another folder with backup.setLocation.',
      });
    }
  }

  #refuseRemote(host: BackupHost): void {
    const why = backupRefusal(host.uri);
    if (why !== null) {
      throw new StrataError('conflict', `${host.label} cannot keep backups here: ${why}`, {
        hint: 'Back up from a Strata running on that host, connected with qemu:///system or qemu:///session.',
      });
    }
  }

}
