// Planning a backup: which disks, full or incremental and why, where it goes, what it writes, and
// whether it may start now. The preview and the start ask the same questions here.
import { backupRemote, remoteOfflineRefusal, type BackupPlan } from '../../../shared/backup.ts';
import type { ValidParams } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { DomainDetail } from '../../../shared/model.ts';
import { toStrataError } from '../../libvirt/errors.ts';
import { log } from '../../log/logger.ts';
import { measureCopy } from '../health/qemu-img.ts';
import type { BackupContext, BackupHost } from './context.ts';
import { decideOffline } from './offline.ts';
import type { BackupStore } from './store.ts';

export interface BackupDecision {
  kind: 'full' | 'incremental';
  reason: string;
  /** The set an incremental continues; null: a new set. */
  setId: string | null;
  /** The checkpoint an incremental starts from. */
  from: string | null;
  dirtyBytes: Map<string, number | null> | null;
}

export function fullBackup(reason: string): BackupDecision {
  return { kind: 'full', reason, setId: null, from: null, dirtyBytes: null };
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

export async function planBackup(ctx: BackupContext, host: BackupHost, p: ValidParams<'backup.preview'>): Promise<BackupPlan> {
  ctx.refuseRemote(host);
  const detail = await host.getDomain(p.domain);
  const disks = chosenDisks(detail, p.disks);
  const store = await ctx.store(host);
  // The dirty data is computed by QEMU (it reads the block nodes): asked only of a running domain
  // with no job on any disk, as QEMU 7.2 crashes reading block nodes while a block job ends (a
  // shut-off one's by a read-only qemu-storage-daemon of its own, when no job holds its disks).
  const quiet =
    (detail.state === 'running' || detail.state === 'paused' || detail.state === 'shutoff') &&
    !ctx.isRunning(host.id, detail.name) &&
    detail.disks.every((d) => host.jobs.occupying(detail.name, d.target) === undefined);
  const decision = await decide(host, store, detail, disks, p.kind, quiet);
  const folder = decision.setId === null ? store.domainFolder(p.domain) : store.setFolder(p.domain, decision.setId);
  const diskBytes = disks.map((disk) => ({ disk, bytes: decision.dirtyBytes?.get(disk) ?? null }));
  if (decision.kind === 'full') {
    for (const entry of diskBytes) {
      const top = detail.disks.find((d) => d.target === entry.disk)?.chain[0];
      try {
        entry.bytes = !top ? 0 : store.files.remote === null ? await measureCopy(top.path, top.format, 'qcow2') : await remoteMeasure(store, top.path, top.format);
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
    onHost: store.files.remote,
    freeBytes: await store.files.freeBytes(folder),
    bandwidth: 'live',
    refused: whyRefused(ctx, host, detail, disks),
    waiting: detail.state === 'shutoff' ? null : whyWaiting(host, detail.name, disks),
  };
}

/** qemu-img measure on the remote host, where the disk's image is. */
async function remoteMeasure(store: BackupStore, path: string, format: string | null): Promise<number | null> {
  const run = await store.files.qemuImg(['measure', '--output=json', '-U', '-O', 'qcow2', ...(format ? ['-f', format] : []), '--', path], 60_000);
  const required = run.code === 0 ? (JSON.parse(run.stdout) as { required?: unknown }).required : null;
  return typeof required === 'number' ? required : null;
}

export function chosenDisks(detail: DomainDetail, asked: readonly string[] | undefined): string[] {
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

export function whyRefused(ctx: BackupContext, host: BackupHost, detail: DomainDetail, disks: readonly string[]): string | null {
  if (host.readOnly) return `${host.label} is connected read-only`;
  if (detail.state !== 'running' && detail.state !== 'paused' && detail.state !== 'shutoff') {
    return `${detail.name} is ${detail.state}: Strata backs up running domains through libvirt and shut-off ones through qemu-storage-daemon; start it or shut it down`;
  }
  if (ctx.isRunning(host.id, detail.name)) return `a backup of ${detail.name} is already running or waiting to`;
  const remote = backupRemote(host.uri);
  if (remote !== null && detail.state === 'shutoff') return remoteOfflineRefusal(detail.name, remote);
  // A running domain's backup waits in the host's queue instead (whyWaiting).
  return detail.state === 'shutoff' ? whyWaiting(host, detail.name, disks, false) : null;
}

/**
 * Why a backup of `disks` cannot start at once, as the queue sees a block job: a job running,
 * starting or waiting on one of its disks, jobs waiting ahead of it, or no room on the host for
 * all its disks (libvirt starts them together).
 */
export function whyWaiting(host: BackupHost, domain: string, disks: readonly string[], behindQueue = true): string | null {
  for (const disk of disks) {
    const busy = host.jobs.occupying(domain, disk);
    if (busy) return `${domain}/${disk} has a ${busy.type} job ${busy.phase}: a backup waits until the disk is free`;
  }
  const waiting = behindQueue ? host.jobs.queued().length : 0;
  if (waiting > 0) return `${waiting} job(s) are waiting ahead of it in ${host.label}'s queue`;
  return noRoom(host, disks.length);
}

/** Why the host has no room for `count` more jobs now, or null. */
export function noRoom(host: BackupHost, count: number): string | null {
  const max = host.info().limits.maxConcurrentJobs;
  const taken = host.jobs.running().length + host.jobs.starting().length;
  if (max > 0 && taken + count > max) return `${host.label} runs ${taken} of at most ${max} jobs: the backup needs room for ${count}`;
  return null;
}

/** Full or incremental, and why: an incremental continues the newest good set from its last checkpoint. */
export async function decide(
  host: BackupHost,
  store: BackupStore,
  detail: DomainDetail,
  disks: readonly string[],
  kind: 'auto' | 'full',
  withSize = false,
): Promise<BackupDecision> {
  if (kind === 'full') return fullBackup('a full backup was asked for');
  if (detail.state === 'shutoff' && store.files.remote !== null) return fullBackup(remoteOfflineRefusal(detail.name, store.files.remote));
  const sets = (await store.list(detail.name)).filter((s) => s.good && s.domain === detail.name);
  const last = sets[sets.length - 1];
  if (!last) return fullBackup(`no earlier backup of ${detail.name} is in ${store.domainFolder(detail.name)}`);
  if (last.domainUuid !== null && last.domainUuid !== detail.uuid) return fullBackup(`the newest set belongs to another domain of the same name (another UUID)`);
  const setDisks = last.disks.map((d) => d.target).sort();
  if (setDisks.join(',') !== [...disks].sort().join(',')) return fullBackup(`the newest set holds disks ${setDisks.join(', ')}, not ${disks.join(', ')}`);
  const point = [...last.points].reverse().find((p) => p.status === 'complete');
  if (!point) return fullBackup('the newest set has no complete backup');
  const conn = host.libvirt;
  if (!conn) throw new StrataError('unavailable', `${host.label} is not connected`);
  let checkpoints: { name: string; xml: string }[];
  try {
    const sized = withSize && detail.state !== 'shutoff'
      ? await conn.listAllCheckpoints(detail.name, { size: true }).catch((err: unknown) => {
          log.debug('libvirt gave no dirty data of the checkpoints', { host: host.id, domain: detail.name, err });
          return null;
        })
      : null;
    checkpoints = sized ?? (await conn.listAllCheckpoints(detail.name));
  } catch (err) {
    return fullBackup(`libvirt cannot list ${detail.name}'s checkpoints: ${toStrataError(err).message}`);
  }
  const found = checkpoints.find((c) => c.name === point.checkpoint);
  if (!found) return fullBackup(`libvirt has no checkpoint ${point.checkpoint} of the newest set (the domain was redefined, its checkpoints deleted, or that backup was taken while it was shut off)`);
  const incremental: BackupDecision = {
    kind: 'incremental',
    reason: `changes since checkpoint ${point.checkpoint} (set ${last.id}, point ${point.index})`,
    setId: last.id,
    from: point.checkpoint,
    dirtyBytes: withSize && detail.state !== 'shutoff' ? dirtyBytes(found.xml, disks) : null,
  };
  // A shut-off domain's disks are read by Strata itself: their bitmaps must allow it.
  return detail.state === 'shutoff' ? decideOffline(detail, disks, found, incremental, withSize) : incremental;
}
