// Running a backup: libvirt's push backup of a running domain (or the offline engine for a
// shut-off one), followed by the host's JobTracker like every other job; the point is settled in
// the set's manifest when its jobs end, and retention applied after it succeeded. Points an
// earlier Strata left running are followed to their end here too.
import { join } from 'node:path';
import type { BackupPoint, BackupResults } from '../../../shared/backup.ts';
import type { ValidParams } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { DomainDetail, JobEvent } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { toStrataError } from '../../libvirt/errors.ts';
import type { DomainJobStats, JobCompletedNotice } from '../../libvirt/types.ts';
import { escapeXml } from '../../libvirt/xml.ts';
import { log } from '../../log/logger.ts';
import { qemuImgMessage } from '../health/qemu-img.ts';
import type { BackupFiles } from './files.ts';
import type { BackupContext, BackupHost, Running } from './context.ts';
import { manifestFormat, type Manifest } from './manifest.ts';
import { settleOfflineCheckpoint, startOffline } from './offline.ts';
import { budgetShare } from '../jobs/scheduler.ts';
import { chosenDisks, decide, fullBackup, noRoom, whyRefused, whyWaiting, type BackupDecision } from './plan.ts';
import { removeSet } from './sets.ts';
import { imageFileName, setsToRemove, type BackupStore } from './store.ts';
import { strataVersion } from './version.ts';

/** Resolves once no process holds `file` open for writing (qemu-img info without -U can lock it). */
async function released(files: BackupFiles, file: string): Promise<void> {
  const deadline = Date.now() + releaseTimeoutMs;
  for (;;) {
    const run = await files.qemuImg(['info', '--output=json', '--', file], 30_000);
    if (run.code === 0) return;
    if (!/lock/i.test(qemuImgMessage(run)) || Date.now() > deadline) throw new Error(`${file} is not released: ${qemuImgMessage(run)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function diskXml(disks: readonly string[], all: readonly string[], yes: string, no: string): string {
  return all.map((d) => `<disk name='${escapeXml(d)}' ${disks.includes(d) ? yes : no}/>`).join('');
}

/** A point recorded in its set, with what libvirt is to be asked for it. */
interface Recorded {
  store: BackupStore;
  setId: string;
  point: BackupPoint;
  decision: BackupDecision;
  backupXml: string;
  checkpointXml: string;
}

/** What starting a running domain's backup needs, now or at its turn in the queue. */
interface Launch {
  running: Running;
  p: ValidParams<'backup.start'>;
  disks: readonly string[];
  decision: BackupDecision;
  point: BackupPoint;
  backupXml: string;
  checkpointXml: string;
  note: string | undefined;
}

// After libvirt's job-completed, QEMU still holds a backup's target images until libvirt takes
// them out of QEMU (about half a second here): settling waits for them, at most this long.
const releaseTimeoutMs = 30_000;

export class BackupRunner {
  readonly #ctx: BackupContext;
  #unsubscribe: (() => void) | null = null;
  /** Connections whose job-completed events end backups: one listener each. */
  readonly #completions = new WeakSet<LibvirtConnection>();
  /** libvirt's final statistics of a backup, from its job-completed event. */
  readonly #completedStats = new WeakMap<Running, DomainJobStats>();
  /** Points being settled: a quit waits for their manifests (see flush()). */
  readonly #settling = new Set<Promise<void>>();

  constructor(ctx: BackupContext) {
    this.#ctx = ctx;
  }

  get ctx(): BackupContext {
    return this.#ctx;
  }

  async start(host: BackupHost, p: ValidParams<'backup.start'>, fullBecause?: string, note?: string): Promise<BackupResults['backup.start']> {
    this.#ctx.refuseRemote(host);
    const detail = await host.getDomain(p.domain);
    const disks = chosenDisks(detail, p.disks);
    const refused = whyRefused(this.#ctx, host, detail, disks);
    if (refused) throw new StrataError('conflict', `Not started: ${refused}`);
    if (!host.libvirt) throw new StrataError('unavailable', `${host.label} is not connected`);
    const key = `${host.id}/${detail.name}`;
    // Claimed until its Running is in place: two requests at once cannot both pass whyRefused.
    this.#ctx.claimed.add(key);
    let recorded: Recorded;
    try {
      recorded = await this.#record(host, detail, disks, p, fullBecause, note);
    } finally {
      this.#ctx.claimed.delete(key);
    }
    const { store, setId, point, decision, backupXml, checkpointXml } = recorded;
    if (detail.state === 'shutoff') return startOffline(this, host, store, detail, disks, setId, point, p.bandwidthBytesPerSec);
    const running: Running = {
      hostId: host.id,
      domain: detail.name,
      setId,
      point: point.index,
      checkpoint: point.checkpoint,
      jobIds: new Set(),
      ended: new Map(),
      host,
      store,
      offline: false,
      launching: false,
    };
    this.#ctx.running.set(key, running);
    this.listen();
    const launch: Launch = { running, p, disks, decision, point, backupXml, checkpointXml, note };
    const waiting = whyWaiting(host, detail.name, disks);
    if (waiting === null) return this.#launch(launch, new Map());
    return this.#enqueue(launch, waiting);
  }

  /** Decides full or incremental, and records the point in its set as 'running' before libvirt writes anything. */
  async #record(host: BackupHost, detail: DomainDetail, disks: readonly string[], p: ValidParams<'backup.start'>, fullBecause: string | undefined, note: string | undefined): Promise<Recorded> {
    const store = await this.#ctx.store(host);
    await this.#ctx.prepareRoot(host, store);
    const decided = fullBecause ? fullBackup(fullBecause) : await decide(host, store, detail, disks, p.kind);
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
    return { store, setId, point, decision, backupXml, checkpointXml };
  }

  /**
   * The backup waits in the host's queue, one queued job per disk, as a block job does. Its turn
   * comes when the queue reaches one of them; it starts only when all its disks are free and the
   * host has room for all of them (libvirt starts them together), else it waits for the next turn.
   */
  async #enqueue(launch: Launch, why: string): Promise<BackupResults['backup.start']> {
    const { running, p, disks } = launch;
    const { host, domain, setId, point: index } = running;
    running.queued = true;
    const queuedIds = new Map<string, string>();
    for (const disk of disks) {
      const job = host.jobs.enqueue(domain, disk, 'backup', { requestedBandwidthBytesPerSec: p.bandwidthBytesPerSec }, () => this.#turn(launch, queuedIds));
      queuedIds.set(disk, job.id);
      running.jobIds.add(job.id);
    }
    const { set } = await running.store.get(domain, setId);
    this.#ctx.changed(host.id, domain, setId, index, 'running');
    log.info('backup waits in the queue', { host: host.id, domain, set: setId, point: index, why });
    const point = set.points.find((q) => q.index === index) ?? launch.point;
    const jobs = host.jobs.queued().filter((e) => running.jobIds.has(e.job.id)).map((e) => e.job);
    return { set, point, jobs };
  }

  async #turn(launch: Launch, queuedIds: ReadonlyMap<string, string>): Promise<void> {
    const { running, disks } = launch;
    const { host, domain } = running;
    if (this.#ctx.running.get(`${host.id}/${domain}`) !== running || !running.queued) return;
    const waiting = new Set(host.jobs.queued().map((e) => e.job.id));
    // One of its jobs left the queue (removed by the user): the others follow it out (#jobEvent).
    if (![...queuedIds.values()].every((id) => waiting.has(id))) return;
    const busy = [...host.jobs.running(), ...host.jobs.starting()].some((j) => j.domain === domain && disks.includes(j.disk));
    if (busy || noRoom(host, disks.length) !== null) return;
    let refusal: string | null = null;
    let fullBecause: string | null = null;
    try {
      // The domain, or the checkpoint an incremental starts from, may have changed while it waited.
      const detail = await host.getDomain(domain);
      if (detail.state !== 'running' && detail.state !== 'paused') refusal = `${domain} is ${detail.state} now`;
      else if (launch.decision.kind === 'incremental') {
        const now = await decide(host, running.store, detail, disks, 'auto');
        if (now.kind !== 'incremental' || now.from !== launch.decision.from) fullBecause = now.reason;
      }
    } catch (err) {
      refusal = toStrataError(err).message;
    }
    // Removed from the queue meanwhile: that end has settled it.
    const stillWaiting = new Set(host.jobs.queued().map((e) => e.job.id));
    if (this.#ctx.running.get(`${host.id}/${domain}`) !== running || ![...queuedIds.values()].every((id) => stillWaiting.has(id))) return;
    if (refusal === null && fullBecause === null) {
      running.queued = false;
      await this.#launch(launch, queuedIds);
      return;
    }
    running.queued = false;
    this.#ctx.running.delete(`${host.id}/${domain}`);
    const reason = refusal ?? `the incremental it was to be no longer fits: ${fullBecause ?? ''}`;
    for (const id of queuedIds.values()) host.jobs.fail(id, `could not start after waiting in the queue: ${reason}`);
    this.#ctx.changed(host.id, domain, running.setId, running.point, await this.settle(running, 'failed', `could not start after waiting in the queue: ${reason}`, false));
    if (fullBecause !== null) {
      log.info('a queued incremental backup became full at its turn', { host: host.id, domain, reason: fullBecause });
      await this.start(host, { ...launch.p, kind: 'full' }, `at its turn in the queue: ${fullBecause}`, launch.note);
    }
  }

  /** Asks libvirt for the backup; `queuedIds` names the queued jobs it starts, by disk. */
  async #launch(launch: Launch, queuedIds: ReadonlyMap<string, string>): Promise<BackupResults['backup.start']> {
    const { running, p, disks, decision, backupXml, checkpointXml, note } = launch;
    const { host, domain, setId, point: index, store } = running;
    const key = `${host.id}/${domain}`;
    const conn = host.libvirt;
    const requested = disks.map((disk) => host.jobs.request(domain, disk, 'backup', { requestedBandwidthBytesPerSec: p.bandwidthBytesPerSec }, queuedIds.get(disk)));
    running.jobIds = new Set(requested.map((j) => j.id));
    // Its share of the host's budget among the jobs that run once it does, like a block job's at start.
    const budget = host.info().limits.bandwidthBudgetBytesPerSec;
    const limit = budgetShare(budget, p.bandwidthBytesPerSec, host.jobs.running().length + disks.length);
    let checkpointMade = false;
    try {
      if (!conn) throw new StrataError('unavailable', `${host.label} is not connected`);
      await this.#watchCompletion(host, conn);
      // libvirtd 9.0 segfaults when QEMU ends (the guest powers off, QEMU crashes, a destroy)
      // while virDomainBackupBegin is still making the checkpoint it was given (it frees the
      // checkpoint with the stopped domain, then rolls it back). A checkpoint of its own call is
      // done before libvirt handles QEMU's end, so it is made first and the backup begins
      // without one. Writes between the two are in the backup and in the checkpoint's bitmap:
      // the next incremental copies them again, and misses none.
      await conn.checkpointCreateXML(domain, checkpointXml);
      checkpointMade = true;
      await conn.backupBegin(domain, backupXml, null);
    } catch (err) {
      const e = toStrataError(err, `Could not start a backup of ${domain}`);
      this.#ctx.running.delete(key);
      for (const job of requested) host.jobs.fail(job.id, `could not start: ${e.message}`);
      this.#ctx.changed(host.id, domain, setId, index, await this.settle(running, 'failed', `libvirt refused it: ${e.message}`, checkpointMade));
      if (decision.kind === 'incremental') {
        log.warn('libvirt refused an incremental backup; taking a full one instead', { host: host.id, domain, err });
        return this.start(host, { ...p, kind: 'full' }, `libvirt refused the incremental from ${decision.from}: ${e.message}`, note);
      }
      throw e;
    }
    // libvirt's backup XML has no bandwidth: the limit is set on each disk's block job once it
    // runs. A job that refused it (a small disk's may have ended already) says it is unlimited,
    // never a limit it does not have.
    const unlimited = new Set<string>();
    if (limit > 0) {
      for (const disk of disks) {
        await conn.blockJobSetSpeed(domain, disk, limit).catch((err: unknown) => {
          unlimited.add(disk);
          log.warn('could not limit a backup just started; it runs unlimited, or has ended already', { host: host.id, domain, disk, err });
        });
      }
    }
    const jobs = disks.map((disk) =>
      host.jobs.begin(domain, disk, 'backup', { bandwidthBytesPerSec: unlimited.has(disk) ? 0 : limit, requestedBandwidthBytesPerSec: p.bandwidthBytesPerSec }),
    );
    if (budget > 0) await this.#rebalance(host, budget, running.jobIds);
    const { set } = await store.get(domain, setId);
    this.#ctx.changed(host.id, domain, setId, index, 'running');
    log.info('backup started', { host: host.id, domain, set: setId, point: index, kind: decision.kind, reason: decision.reason, bandwidthBytesPerSec: limit });
    return { set, point: set.points.find((q) => q.index === index) ?? launch.point, jobs };
  }

  // The other jobs' shares shrink as the backup's jobs join them under the budget: each is set
  // again to what it asked for, which the host caps by its new share.
  async #rebalance(host: BackupHost, budget: number, ours: ReadonlySet<string>): Promise<void> {
    const running = host.jobs.running();
    for (const job of running) {
      if (ours.has(job.id) || budgetShare(budget, job.requestedBandwidthBytesPerSec, running.length) === job.bandwidthBytesPerSec) continue;
      await host.setSpeed(job.domain, job.disk, job.requestedBandwidthBytesPerSec).catch((err: unknown) => {
        log.debug('a job refused its smaller share as a backup started; the next rebalance tries again', { host: host.id, job: job.id, err });
      });
    }
  }

  listen(): void {
    this.#unsubscribe ??= this.#ctx.env.hub.on((event, data) => {
      if (event === 'job') this.#jobEvent(data as JobEvent);
    });
  }

  // libvirt 9.0 sends a backup's job-completed about half a second before the block-job events
  // that end its disks' jobs (measured: it first takes the target images out of QEMU), so a
  // backup's jobs end when libvirt says the backup completed, as `virsh backup-begin` users see it.
  async #watchCompletion(host: BackupHost, conn: LibvirtConnection): Promise<void> {
    if (this.#completions.has(conn)) return;
    this.#completions.add(conn);
    await conn.onJobCompleted((n) => this.#completed(host, n)).catch((err: unknown) => {
      this.#completions.delete(conn);
      log.debug("libvirt's job-completed events are not heard; backups end with their block-job events", { host: host.id, err });
    });
  }

  #completed(host: BackupHost, n: JobCompletedNotice): void {
    if (n.stats.operation !== 'backup' || n.stats.type !== 'completed') return;
    const running = this.#ctx.running.get(`${host.id}/${n.domain}`);
    if (!running || running.host !== host || running.offline || running.queued === true) return;
    this.#completedStats.set(running, n.stats);
    for (const job of host.jobs.list()) {
      if (running.jobIds.has(job.id) && job.endedAt === null) host.jobs.conclude(job.domain, job.disk, 'completed', 'completed');
    }
  }

  #jobEvent(job: JobEvent): void {
    if (job.transition !== 'ended' || job.type !== 'backup') return;
    for (const [key, running] of this.#ctx.running) {
      const ours = running.jobIds.has(job.id) || (running.launching && job.hostId === running.hostId && job.domain === running.domain);
      if (!ours || running.ended.has(job.id)) continue;
      running.ended.set(job.id, job);
      // One disk's job left the queue (removed, or failed): the backup's other disks leave it too.
      if (running.queued) {
        for (const other of running.jobIds) {
          const waiting = running.host.jobs.queued().find((e) => e.job.id === other);
          if (waiting) running.host.jobs.cancelQueued(waiting.job.domain, waiting.job.disk);
        }
      }
      this.maybeFinish(key, running);
      return;
    }
  }

  maybeFinish(key: string, running: Running): void {
    if (running.launching || ![...running.jobIds].every((id) => running.ended.has(id))) return;
    if (this.#ctx.running.get(key) !== running) return;
    this.#ctx.running.delete(key);
    if (this.#ctx.running.size === 0) {
      this.#unsubscribe?.();
      this.#unsubscribe = null;
    }
    const settling = this.#finish(running)
      .catch((err: unknown) => log.error('could not settle a backup set', { host: running.hostId, domain: running.domain, set: running.setId, err }))
      .finally(() => this.#settling.delete(settling));
    this.#settling.add(settling);
  }

  /**
   * Resolves once every point being settled is written. A host's stop waits for it before its ssh
   * and libvirt links go: a backup dropped from the queue as Strata quits is settled then, and a
   * manifest left saying 'running' would be judged at the next start from whatever libvirt last
   * kept of the domain's jobs.
   */
  async flush(): Promise<void> {
    await Promise.all(this.#settling);
  }

  async #finish(running: Running): Promise<void> {
    const jobs = [...running.ended.values()].filter((j) => running.jobIds.has(j.id));
    const conn = running.offline ? null : running.host.libvirt;
    let stats = this.#completedStats.get(running) ?? null;
    try {
      stats ??= conn ? await conn.jobStats(running.domain, { completed: true }) : null;
    } catch (err) {
      log.debug('no completed job statistics for a backup', { host: running.hostId, domain: running.domain, err });
    }
    // A job whose end event was lost is 'unknown' to the tracker: libvirt's completed statistics tell.
    const allCompleted = jobs.every((j) => j.phase === 'completed' || (j.phase === 'unknown' && stats?.type === 'completed' && stats.operation === 'backup'));
    if (allCompleted) {
      const processed = stats?.dataProcessedBytes ?? (typeof stats?.raw['disk_processed'] === 'number' ? stats.raw['disk_processed'] : null);
      const status = await this.settle(running, 'complete', null, true, processed);
      if (status === 'complete') await this.#applyRetention(running);
      this.#ctx.changed(running.hostId, running.domain, running.setId, running.point, status);
      return;
    }
    const cancelled = jobs.some((j) => j.phase === 'cancelled');
    const why = stats?.errorMessage ?? jobs.find((j) => j.phase !== 'completed')?.outcome ?? 'ended without completing';
    const began = !running.offline && running.queued !== true;
    // Out of the queue: the job says how (the user removed it, or Strata quit before its turn).
    const aborted = began || running.offline ? 'aborted before it completed' : (jobs.find((j) => j.phase === 'cancelled')?.outcome ?? 'removed from the queue before it started');
    this.#ctx.changed(running.hostId, running.domain, running.setId, running.point, await this.settle(running, cancelled ? 'cancelled' : 'failed', cancelled ? aborted : why, began));
  }

  /**
   * Writes the point's end into the manifest. A complete incremental first gets the previous
   * point's image as its backing file: libvirt names the disk's live image there, which a restore
   * must never read. Anything else loses its files and its checkpoint, so the next backup starts
   * from the last good one.
   */
  async settle(running: Running, status: BackupPoint['status'], reason: string | null, began: boolean, dataBytes: number | null = null): Promise<BackupPoint['status']> {
    const { store, domain, setId } = running;
    const folder = store.setFolder(domain, setId);
    const { manifest } = await store.get(domain, setId);
    const point = manifest.points.find((q) => q.index === running.point);
    if (!point) return status;
    const sizes = new Map<string, number>();
    if (status === 'complete') {
      try {
        if (!running.offline) for (const image of point.images) await released(store.files, join(folder, image.file));
        for (const image of point.images) {
          if (image.backingFile !== null) {
            const run = await store.files.qemuImg(['rebase', '-u', '-f', 'qcow2', '-b', image.backingFile, '-F', 'qcow2', '--', join(folder, image.file)], 60_000);
            if (run.code !== 0) throw new Error(`qemu-img rebase of ${image.file}: ${qemuImgMessage(run)}`);
          }
          const size = await store.files.size(join(folder, image.file));
          if (size === null) throw new Error(`${image.file} is not in the set's folder`);
          sizes.set(image.file, size);
        }
      } catch (err) {
        status = 'failed';
        reason = `its images could not be put in order: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    // A shut-off domain's checkpoint is recorded in libvirt now, or its bitmaps removed.
    const note = running.offline ? await settleOfflineCheckpoint(running, point, status === 'complete') : null;
    if (status !== 'complete') {
      for (const image of point.images) await store.files.removeFile(join(folder, image.file));
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
      else if (note !== null) q.reason = q.reason ? `${q.reason}; ${note}` : note;
      q.dataBytes = dataBytes;
      for (const image of q.images) image.bytes = sizes.get(image.file) ?? null;
    });
    log[status === 'complete' ? 'info' : 'warn'](`backup ${status}`, { host: running.hostId, domain, set: setId, point: running.point, reason });
    this.#ctx.env.hub.emit('domain.changed', { hostId: running.hostId, domain });
    return status;
  }

  async #applyRetention(running: Running): Promise<void> {
    const retention = await this.#ctx.settings.retention(running.host.uri, running.domain);
    const sets = (await running.store.list(running.domain)).filter((s) => s.domain === running.domain);
    for (const set of setsToRemove(sets, retention, Date.now())) {
      await removeSet(this.#ctx, running.host, running.store, set).catch((err: unknown) => log.warn('retention could not remove a backup set', { host: running.hostId, set: set.id, err }));
    }
  }

  /**
   * Points left 'running' by a Strata that stopped while they were written: while libvirt still
   * runs the backup, the host's tracker follows its jobs (found as started elsewhere) and the
   * point is settled when they end, as if this Strata had started it; when libvirt runs none, the
   * point cannot be shown complete and is settled failed.
   */
  async reconcile(host: BackupHost): Promise<boolean> {
    const conn = host.libvirt;
    if (!conn) return true;
    // A shut-off domain's backup jobs a previous Strata left are in the job model only once the
    // host has found them (its offline recovery, at its first connection): not before.
    const recovered = host.offlineRecovered;
    if (recovered === null) return true;
    await recovered;
    // A remote host without a backup folder has no sets to look at.
    if ((await this.#ctx.location(host)).source === 'unset') return false;
    let pending = false;
    const store = await this.#ctx.store(host);
    for (const set of await store.list()) {
      for (const point of set.points) {
        if (point.status !== 'running' || this.#ctx.running.has(`${host.id}/${set.domain}`)) continue;
        const disks = point.images.map((i) => i.disk);
        // An offline backup's job found at start-up may have ended already (its daemon finished, or
        // was gone): its end, kept by the tracker, settles the point.
        const jobs = host.jobs.list().filter((j) => j.domain === set.domain && j.type === 'backup' && (j.endedAt === null || j.engine === 'qemu-storage-daemon') && disks.includes(j.disk));
        const offline = jobs.length > 0 ? jobs.every((j) => j.engine === 'qemu-storage-daemon') : (await conn.domainState(set.domain).catch(() => null)) === 'shutoff';
        const ended = new Map(jobs.filter((j) => j.endedAt !== null).map((j) => [j.id, j]));
        const running: Running = { hostId: host.id, domain: set.domain, setId: set.id, point: point.index, checkpoint: point.checkpoint, jobIds: new Set(jobs.map((j) => j.id)), ended, host, store, offline, launching: false };
        if (jobs.length === disks.length) {
          const key = `${host.id}/${set.domain}`;
          this.#ctx.running.set(key, running);
          this.listen();
          log.info('following a backup an earlier Strata started', { host: host.id, domain: set.domain, set: set.id, point: point.index });
          this.maybeFinish(key, running);
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
          ? await this.settle(running, 'complete', null, true, last.dataProcessedBytes)
          : await this.settle(running, 'failed', 'Strata stopped while it was written, and libvirt no longer runs it nor says it completed', true);
        this.#ctx.changed(host.id, set.domain, set.id, point.index, status);
      }
    }
    return pending;
  }
}
