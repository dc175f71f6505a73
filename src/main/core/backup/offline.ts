// Backups of shut-off domains, through the offline engine (one qemu-storage-daemon per disk, its
// blockdev-backup into the point's image), one job of type backup per disk, settled like a running
// domain's backup when the jobs end. libvirt 9.0 refuses to create or delete a checkpoint of a
// shut-off domain ("cannot create checkpoint for inactive domain"), but records one whose bitmaps
// exist (VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE) and forgets one (DELETE_METADATA_ONLY). So the
// engine adds each disk's persistent bitmap as its backup starts, and only once every disk's
// bitmap is in its image is the checkpoint recorded in libvirt: libvirt never names a bitmap that
// does not exist, and a running domain's next backup starts from it as from its own.
import { join } from 'node:path';
import type { BackupPoint, BackupResults } from '../../../shared/backup.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { DomainDetail, Job } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { toStrataError } from '../../libvirt/errors.ts';
import { escapeXml } from '../../libvirt/xml.ts';
import { log } from '../../log/logger.ts';
import { dirtyBytesSince, incrementalSource, readChainBitmaps, removeBitmap } from '../offline/bitmaps.ts';
import { definedSource } from '../offline/domain-definition.ts';
import type { OfflineOutcome } from '../offline/offline-job.ts';
import type { BackupHost, Running } from './context.ts';
import { fullBackup, type BackupDecision } from './plan.ts';
import type { BackupRunner } from './run.ts';
import type { BackupStore } from './store.ts';

/** A checkpoint's bitmap for `disk`, as its XML names it; null when the checkpoint has none for that disk. */
function checkpointBitmap(checkpointXml: string, checkpoint: string, disk: string): string | null {
  for (const tag of checkpointXml.match(/<disk\b[^>]*\/?>/g) ?? []) {
    const name = /\bname=['"]([^'"]+)['"]/.exec(tag)?.[1];
    if (name !== disk) continue;
    if (/\bcheckpoint=['"]no['"]/.test(tag)) return null;
    return /\bbitmap=['"]([^'"]+)['"]/.exec(tag)?.[1] ?? checkpoint;
  }
  return null;
}

/** The disk's image when the checkpoint was made, from the `<domain>` libvirt keeps with it. */
function checkpointImage(checkpointXml: string, disk: string): string | null {
  try {
    return definedSource(checkpointXml, disk).path;
  } catch {
    return null;
  }
}

export type OfflineSources = { ok: true; sources: Map<string, { bitmap: string; layers: number; image: string }> } | { ok: false; reason: string };

/** For each disk, the bitmap and layers an incremental from `checkpoint` reads, or why it cannot. */
async function offlineSources(detail: DomainDetail, disks: readonly string[], checkpoint: { name: string; xml: string }): Promise<OfflineSources> {
  const sources = new Map<string, { bitmap: string; layers: number; image: string }>();
  for (const target of disks) {
    const image = detail.disks.find((d) => d.target === target)?.chain[0]?.path;
    if (!image) return { ok: false, reason: `${detail.name} has no image for ${target}` };
    const bitmap = checkpointBitmap(checkpoint.xml, checkpoint.name, target);
    if (bitmap === null) return { ok: false, reason: `checkpoint ${checkpoint.name} holds no bitmap for ${target}` };
    let chain;
    try {
      chain = await readChainBitmaps(image);
    } catch (err) {
      return { ok: false, reason: `the bitmaps of ${image} cannot be read: ${err instanceof Error ? err.message : String(err)}` };
    }
    const source = incrementalSource(chain, bitmap, checkpointImage(checkpoint.xml, target));
    if (!source.ok) return { ok: false, reason: `${target}: ${source.reason}` };
    sources.set(target, { bitmap, layers: source.layers, image });
  }
  return { ok: true, sources };
}

/**
 * A shut-off domain's incremental from the checkpoint libvirt knows (`found`), where every disk's
 * bitmaps still record every write since; otherwise full, and why. `withSize`: the dirty data
 * per disk, counted by a read-only qemu-storage-daemon.
 */
export async function decideOffline(detail: DomainDetail, disks: readonly string[], found: { name: string; xml: string }, incremental: BackupDecision, withSize: boolean): Promise<BackupDecision> {
  const checked = await offlineSources(detail, disks, found);
  if (!checked.ok) return fullBackup(`${detail.name} is shut off and its bitmaps do not allow an incremental from checkpoint ${found.name}: ${checked.reason}`);
  if (!withSize) return incremental;
  const dirty = new Map<string, number | null>();
  for (const [disk, s] of checked.sources) {
    dirty.set(disk, await dirtyBytesSince(s.image, s.bitmap, s.layers).catch(() => null));
  }
  return { ...incremental, dirtyBytes: dirty };
}

function endWords(outcome: OfflineOutcome, file: string): { status: 'completed' | 'failed' | 'cancelled'; words: string } {
  const dirty = outcome.checks.filter((c) => !c.clean).map((c) => c.path);
  const checks = dirty.length ? `; qemu-img check finds problems in ${dirty.join(', ')}` : '';
  if (outcome.status === 'completed') {
    return dirty.length ? { status: 'failed', words: `failed${checks}` } : { status: 'completed', words: `completed: backed up into ${file}, which passes qemu-img check; the disk is as it was` };
  }
  if (outcome.status === 'cancelled') return { status: 'cancelled', words: `cancelled; the disk is as it was${checks}` };
  return { status: 'failed', words: `failed: ${outcome.message ?? 'qemu-storage-daemon gave no reason'}; the disk is as it was${checks}` };
}

/**
 * Each disk into the point's image by the offline engine, one job per disk: all of it for a full
 * point, the clusters its checkpoint's bitmaps mark for an incremental. Each job adds the point's
 * checkpoint bitmap to the disk as it starts; settleOfflineCheckpoint records or removes it.
 */
export async function startOffline(runner: BackupRunner, host: BackupHost, store: BackupStore, detail: DomainDetail, disks: readonly string[], setId: string, point: BackupPoint, bandwidthBytesPerSec: number): Promise<BackupResults['backup.start']> {
  const ctx = runner.ctx;
  const folder = store.setFolder(detail.name, setId);
  const running: Running = { hostId: host.id, domain: detail.name, setId, point: point.index, checkpoint: point.checkpoint, jobIds: new Set(), ended: new Map(), host, store, offline: true, launching: true };
  const key = `${host.id}/${detail.name}`;
  ctx.running.set(key, running);
  runner.listen();
  const jobs: Job[] = [];
  try {
    let sources: Map<string, { bitmap: string; layers: number; image: string }> | null = null;
    if (point.kind === 'incremental') {
      // The headers again, as the jobs start: the decision was made from what they said a moment ago.
      const { manifest } = await store.get(detail.name, setId);
      const from = [...manifest.points].reverse().find((q) => q.index < point.index && q.status === 'complete');
      const conn = host.libvirt;
      if (!from || !conn) throw new StrataError('conflict', `set ${setId} has no complete point to continue`);
      const found = (await conn.listAllCheckpoints(detail.name)).find((c) => c.name === from.checkpoint);
      if (!found) throw new StrataError('conflict', `libvirt no longer knows checkpoint ${from.checkpoint}`, { hint: 'Preview the backup again: the next one is full.' });
      const checked = await offlineSources(detail, disks, found);
      if (!checked.ok) throw new StrataError('conflict', `the bitmaps no longer allow an incremental: ${checked.reason}`, { hint: 'Preview the backup again: the next one is full.' });
      sources = checked.sources;
    }
    for (const image of point.images) {
      const disk = detail.disks.find((d) => d.target === image.disk);
      const active = disk?.chain[0];
      if (!disk || !active) throw new StrataError('conflict', `${detail.name} has no disk ${image.disk} any more`);
      const destination = join(folder, image.file);
      const source = sources?.get(image.disk) ?? null;
      if (sources !== null && (source === null || image.backingFile === null)) throw new StrataError('conflict', `the incremental of ${image.disk} has nothing to start from`);
      const operation = {
        kind: 'backup' as const,
        image: active.path,
        destination,
        bitmap: point.checkpoint,
        incremental: source && image.backingFile !== null ? { bitmap: source.bitmap, layers: source.layers, backing: image.backingFile } : null,
      };
      const job = await host.startOfflineOwn(detail.name, disk.target, 'backup', bandwidthBytesPerSec, async () => ({
        operation,
        finish: async (outcome: OfflineOutcome) => endWords(outcome, destination),
      }));
      running.jobIds.add(job.id);
      jobs.push(job);
    }
  } catch (err) {
    const e = toStrataError(err, `Could not start a backup of ${detail.name}`);
    if (jobs.length === 0) {
      ctx.running.delete(key);
      ctx.changed(host.id, detail.name, setId, point.index, await runner.settle(running, 'failed', `the offline engine refused it: ${e.message}`, false));
      throw e;
    }
    // The disks already started are stopped: their ends settle the point as failed.
    for (const job of jobs) await host.abort(detail.name, job.disk).catch(() => undefined);
    running.launching = false;
    runner.maybeFinish(key, running);
    throw e;
  }
  running.launching = false;
  runner.maybeFinish(key, running);
  const { set } = await store.get(detail.name, setId);
  ctx.changed(host.id, detail.name, setId, point.index, 'running');
  log.info('backup started', { host: host.id, domain: detail.name, set: setId, point: point.index, kind: point.kind, engine: 'qemu-storage-daemon' });
  return { set, point: set.points.find((q) => q.index === point.index) ?? point, jobs };
}

/** Each backed-up disk's image, as the domain's definition names it now, and every disk's target. */
async function activeImages(host: BackupHost, domain: string, disks: readonly string[]): Promise<{ images: Map<string, string>; targets: string[] }> {
  const detail = await host.getDomain(domain);
  const images = new Map<string, string>();
  for (const d of detail.disks) {
    const path = d.chain[0]?.path;
    if (disks.includes(d.target) && path) images.set(d.target, path);
  }
  return { images, targets: detail.disks.map((d) => d.target) };
}

async function dropBitmaps(host: BackupHost, domain: string, images: Map<string, string>, bitmap: string): Promise<void> {
  for (const [disk, image] of images) {
    await removeBitmap(image, bitmap).catch((err: unknown) => log.warn('a backup bitmap could not be removed; it stays in the image, unused', { host: host.id, domain, disk, image, bitmap, err }));
  }
}

/**
 * After an offline point settles: a complete one's checkpoint is recorded in libvirt once every
 * disk's bitmap is in its image, consistent and recording; anything else has its bitmaps removed,
 * so nothing names a checkpoint that is not there. Resolves with what the point's reason should
 * add (why the next backup will be full), or null.
 */
export async function settleOfflineCheckpoint(running: Running, point: BackupPoint, complete: boolean): Promise<string | null> {
  const { host, domain } = running;
  const checkpoint = point.checkpoint;
  const disks = point.images.map((i) => i.disk);
  let images: Map<string, string>;
  let targets: string[];
  try {
    ({ images, targets } = await activeImages(host, domain, disks));
  } catch (err) {
    log.warn('the disks of a backed-up domain cannot be read; its checkpoint is not recorded', { host: host.id, domain, checkpoint, err });
    return `no checkpoint was recorded (the domain cannot be read: ${toStrataError(err).message}), so the next backup is full`;
  }
  if (!complete) {
    await dropBitmaps(host, domain, images, checkpoint);
    return null;
  }
  const conn = host.libvirt;
  try {
    if (!conn) throw new Error(`${host.label} is not connected`);
    for (const disk of disks) {
      const image = images.get(disk);
      if (!image) throw new Error(`${disk} is no longer a disk of ${domain}`);
      const found = (await readChainBitmaps(image))[0]?.bitmaps.find((b) => b.name === checkpoint);
      if (!found || found.flags.includes('in-use') || !found.flags.includes('auto')) throw new Error(`${image} holds no recording bitmap ${checkpoint}`);
    }
    await recordCheckpoint(conn, domain, checkpoint, point.startedAt, disks, targets);
    return null;
  } catch (err) {
    await dropBitmaps(host, domain, images, checkpoint);
    const why = err instanceof Error ? toStrataError(err).message : String(err);
    log.warn('an offline backup completed, but its checkpoint could not be recorded; the next backup is full', { host: host.id, domain, checkpoint, err });
    return `no checkpoint was recorded (${why}), so the next backup is full`;
  }
}

/**
 * libvirt records the checkpoint whose bitmaps the engine made (redefine), with the definition of
 * now (its disk sources tell the next backup which image was active); every other disk is named
 * with checkpoint='no', so libvirt assumes no bitmap that was not made.
 */
async function recordCheckpoint(conn: LibvirtConnection, domain: string, checkpoint: string, startedAt: number, disks: readonly string[], targets: readonly string[]): Promise<void> {
  const definition = (await conn.domainXml(domain, { inactive: true })).replace(/^<\?xml[^>]*>\s*/, '');
  const diskXml = targets.map((d) => (disks.includes(d) ? `<disk name='${escapeXml(d)}' checkpoint='bitmap' bitmap='${escapeXml(checkpoint)}'/>` : `<disk name='${escapeXml(d)}' checkpoint='no'/>`)).join('');
  const xml = `<domaincheckpoint><name>${escapeXml(checkpoint)}</name><creationTime>${Math.floor(startedAt / 1000)}</creationTime><disks>${diskXml}</disks>${definition}</domaincheckpoint>`;
  await conn.checkpointCreateXML(domain, xml, { redefine: true });
}

/**
 * Deletes a checkpoint of a shut-off domain, which libvirt 9.0 refuses to do with its bitmaps:
 * libvirt's record goes first (metadata only), then the bitmaps, so libvirt never names a bitmap
 * that is gone. Resolves false when the domain is not shut off (libvirt deletes it then).
 */
export async function deleteOfflineCheckpoint(host: BackupHost, domain: string, checkpoint: string): Promise<boolean> {
  const conn = host.libvirt;
  if (!conn || (await conn.domainState(domain)) !== 'shutoff') return false;
  const found = (await conn.listAllCheckpoints(domain)).find((c) => c.name === checkpoint);
  if (!found) return true;
  const detail = await host.getDomain(domain);
  const bitmaps = new Map<string, string>();
  for (const d of detail.disks) {
    const bitmap = checkpointBitmap(found.xml, checkpoint, d.target);
    const path = d.chain[0]?.path;
    if (bitmap !== null && path) bitmaps.set(path, bitmap);
  }
  await conn.checkpointDelete(domain, checkpoint, { metadataOnly: true });
  for (const [image, bitmap] of bitmaps) {
    await removeBitmap(image, bitmap).catch((err: unknown) => log.warn('a deleted checkpoint\'s bitmap could not be removed; it stays in the image, unused', { host: host.id, domain, image, bitmap, err }));
  }
  return true;
}
