// A restore is a job like the others: the offline engine (one qemu-storage-daemon) opens the
// point's chain read-only, each image an explicit --blockdev node with its backing link spelled
// out, and mirrors it (sync full) into a new qcow2 file, queued under the host's limits, with
// progress, a live limit and abort. The file is written under a temporary name beside its
// destination and linked to that name only once the data is complete and checked, so a failed or
// aborted restore leaves no file that looks whole. Into a shut-off domain, the disk's persistent
// definition is then switched to the restored image (every other byte kept); the old chain stays
// on disk unless the request names its files for deletion, as the preview listed them.
import { randomBytes } from 'node:crypto';
import { existsSync, statfsSync } from 'node:fs';
import { chmod, link, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { RestorePlan, RestoreStarted } from '../../../shared/backup.ts';
import type { ValidParams } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { Job, JobEvent } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { log } from '../../log/logger.ts';
import type { EventHub } from '../api/event-hub.ts';
import { measureCopy } from '../health/qemu-img.ts';
import type { Host } from '../hosts/host.ts';
import type { OfflineFinish } from '../jobs/offline-runs.ts';
import { defineNewChain, definedSource, rewriteDiskChain } from '../offline/domain-definition.ts';
import { readImageChain } from '../offline/image-tool.ts';
import type { OfflineOperation } from '../offline/plan.ts';
import { chainSpec, pointChain } from './restore.ts';
import type { BackupStore } from './store.ts';

/** What a restore needs of a host. */
export type RestoreHost = Pick<Host, 'id' | 'label' | 'readOnly' | 'jobs' | 'getDomain' | 'listDomains' | 'startOfflineOwn' | 'othersUsing'> & { readonly libvirt: LibvirtConnection | null };

type PreviewParams = ValidParams<'backup.restorePreview'>;
type RestoreParams = ValidParams<'backup.restore'>;

const taken = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

function freeBytesAt(folder: string): number | null {
  try {
    const fs = statfsSync(folder);
    return fs.bavail * fs.bsize;
  } catch {
    return null;
  }
}

/** The lines of `before` that `after` replaces, common leading and trailing lines left out, dedented. */
export function changedLines(before: string, after: string): { before: string[]; after: string[] } {
  const a = before.split('\n');
  const b = after.split('\n');
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const was = a.slice(head, a.length - tail);
  const now = b.slice(head, b.length - tail);
  const indent = Math.min(...[...was, ...now].filter((l) => l.trim() !== '').map((l) => /^\s*/.exec(l)![0].length));
  const cut = (lines: string[]) => lines.map((l) => l.slice(Number.isFinite(indent) ? indent : 0));
  return { before: cut(was), after: cut(now) };
}

/** A name beside the disk's image that nothing uses yet. */
async function freeNameBeside(image: string, p: PreviewParams): Promise<string> {
  const stem = join(dirname(image), `${p.domain}-${p.disk}-restored-${p.setId}-${p.point}`);
  for (let n = 1; n < 100; n++) {
    const path = n === 1 ? `${stem}.qcow2` : `${stem}-${n}.qcow2`;
    if (!(await taken(path))) return path;
  }
  throw new StrataError('conflict', `every name like ${stem}.qcow2 is taken`, { hint: 'Name the destination yourself.' });
}

async function checkNewFile(destination: string): Promise<void> {
  if (await taken(destination)) throw new StrataError('conflict', `${destination} already exists: a restore writes a new file`, { hint: 'Choose a file name that is not taken.' });
  const folderOk = await stat(dirname(destination)).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!folderOk) throw new StrataError('invalid-request', `${dirname(destination)} is not a folder on this machine`, { hint: 'Restore into an existing folder.' });
}

/**
 * The other domains that use any of `paths`, by path. The host's index has every running domain's
 * chain, but a shut-off domain's definition names only its active image: its layers below are read
 * from the image headers here, so a base another shut-off domain stands on is never deleted.
 */
async function usersOf(host: RestoreHost, domain: string, paths: readonly string[]): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>();
  const add = (path: string, other: string): void => {
    const known = users.get(path) ?? [];
    if (!known.includes(other)) users.set(path, [...known, other]);
  };
  for (const use of host.othersUsing(domain, paths)) for (const path of use.paths) add(path, use.domain);
  const wanted = new Set(paths);
  const others = (await host.listDomains()).filter((d) => d.name !== domain && d.state === 'shutoff');
  // A few at a time: each read runs qemu-img on the domain's images.
  for (let i = 0; i < others.length; i += 4) {
    await Promise.all(
      others.slice(i, i + 4).map(async (other) => {
        let detail;
        try {
          detail = await host.getDomain(other.name);
        } catch (err) {
          // A domain undefined meanwhile uses nothing; any other failure leaves the question open.
          if (err instanceof StrataError && err.kind === 'not-found') return;
          throw new StrataError('conflict', `cannot tell whether ${other.name} uses the old chain: ${err instanceof Error ? err.message : String(err)}`, { hint: 'Keep the old chain, or try again.' });
        }
        for (const disk of detail.disks) for (const layer of disk.chain) if (wanted.has(layer.path)) add(layer.path, other.name);
      }),
    );
  }
  return users;
}

/** Why the domain's disk cannot be switched now; null when it can. */
function refusalInto(host: RestoreHost, state: string, p: PreviewParams): string | null {
  if (host.readOnly) return `${host.label} is connected read-only: the domain's definition cannot change`;
  if (state === 'running' || state === 'paused') {
    return `${p.domain} is ${state}: a restore into the domain switches its disk, which Strata does only while it is shut off. Shut it down, or restore to a new file`;
  }
  if (state !== 'shutoff') return `${p.domain} is ${state}: a restore into the domain needs it shut off. Shut it down, or restore to a new file`;
  const busy = host.jobs.occupying(p.domain, p.disk);
  if (busy) return `${p.domain}/${p.disk} has a ${busy.type} job ${busy.phase}: the restore waits until the disk is free`;
  return null;
}

/** What the restore of `p` will do: read from the set, and from the domain when it goes into it. */
export async function planRestore(host: RestoreHost, store: BackupStore, p: PreviewParams): Promise<RestorePlan> {
  const { manifest } = await store.get(p.domain, p.setId);
  const folder = store.setFolder(p.domain, p.setId);
  const images = pointChain(folder, manifest, p.point, p.disk).map((f) => join(folder, f));
  const virtualBytes = manifest.disks.find((d) => d.target === p.disk)?.virtualBytes ?? null;
  let bytesToWrite: number | null = null;
  try {
    bytesToWrite = await measureCopy(chainSpec(folder, images.map((i) => basename(i))), null, 'qcow2');
  } catch (err) {
    log.debug('cannot measure a point for a restore preview', { host: host.id, set: p.setId, point: p.point, err });
  }
  const base = { domain: p.domain, setId: p.setId, point: p.point, disk: p.disk, into: p.into, images, virtualBytes, bytesToWrite, bandwidth: 'live' as const };
  if (p.into === 'file') {
    if (p.destination === undefined) {
      throw new StrataError('invalid-request', 'destination names the new image file of a restore', { hint: "Name a new file, or restore with into: 'domain' into the shut-off domain's disk." });
    }
    await checkNewFile(p.destination);
    return { ...base, destination: p.destination, freeBytes: freeBytesAt(dirname(p.destination)), definition: null, oldChain: [], deletable: [], sharedWith: [], refused: null };
  }
  const conn = host.libvirt;
  if (!conn) throw new StrataError('unavailable', `${host.label} is not connected`);
  let detail;
  try {
    detail = await host.getDomain(p.domain);
  } catch (err) {
    if (err instanceof StrataError && err.kind === 'not-found') {
      throw new StrataError('not-found', `${p.domain} is not defined on ${host.label}: there is no domain to restore into`, { hint: 'Restore to a new file instead.' });
    }
    throw err;
  }
  const disk = detail.disks.find((d) => d.target === p.disk);
  if (!disk) throw new StrataError('not-found', `${p.domain} has no disk ${p.disk} any more`, { hint: 'Restore to a new file instead.' });
  const active = disk.chain[0];
  if (!active || active.type !== 'file') throw new StrataError('conflict', `${p.domain}/${p.disk} has no image file to switch from`, { hint: 'Restore to a new file instead.' });
  const destination = p.destination ?? (await freeNameBeside(active.path, p));
  await checkNewFile(destination);
  const oldChain = disk.chain.map((l) => l.path);
  const xml = await conn.domainXml(p.domain, { inactive: true });
  const definition = changedLines(xml, rewriteDiskChain(xml, p.disk, [{ path: destination, format: 'qcow2' }]));
  const users = await usersOf(host, p.domain, oldChain);
  return {
    ...base,
    destination,
    freeBytes: freeBytesAt(dirname(destination)),
    definition,
    oldChain,
    deletable: oldChain.filter((path) => !users.has(path)),
    sharedWith: [...users].map(([path, domains]) => ({ path, domains })),
    refused: refusalInto(host, detail.state, p),
  };
}

/** The images the headers chain together from the point's newest image must be the manifest's. */
async function checkHeaders(images: readonly string[]): Promise<void> {
  const headers = (await readImageChain(images[images.length - 1]!)).map((l) => l.path).reverse();
  if (headers.join('\n') !== images.join('\n')) {
    throw new StrataError('conflict', `the set's image headers chain ${headers.join(' → ')}, not the manifest's ${images.join(' → ')}`, {
      hint: 'Verify the set; restore from another point or set.',
    });
  }
}

/** Links the finished file to its name, never over a file that appeared there meanwhile. */
async function publish(partial: string, destination: string): Promise<void> {
  await chmod(partial, 0o600);
  try {
    await link(partial, destination);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new StrataError('conflict', `${destination} was created by someone else during the restore`, { hint: 'Restore again to another name.' });
    // A file system without hard links: checked, then renamed.
    if (await taken(destination)) throw new StrataError('conflict', `${destination} was created by someone else during the restore`);
    await rename(partial, destination);
    return;
  }
  await rm(partial, { force: true });
}

/**
 * Starts the restore as a job of type 'restore' on the set's domain and disk. With `wait` the reply
 * comes once the job ended, and a job that did not complete is an error with its words.
 */
export async function startRestore(host: RestoreHost, store: BackupStore, hub: EventHub, p: RestoreParams): Promise<RestoreStarted> {
  const plan = await planRestore(host, store, p);
  if (plan.refused !== null) throw new StrataError('conflict', `Not restored: ${plan.refused}`);
  if (p.into === 'file' && p.deleteOldChain.length > 0) {
    throw new StrataError('invalid-request', 'deleteOldChain goes with a restore into the domain: a restore to a new file changes no chain');
  }
  const unconfirmed = p.deleteOldChain.filter((f) => !plan.deletable.includes(f));
  if (unconfirmed.length > 0) {
    throw new StrataError('conflict', `deleteOldChain names ${unconfirmed.join(', ')}, which the restore does not delete`, {
      hint: `Name only files of the old chain no other domain uses: ${plan.deletable.join(', ') || 'none'}.`,
    });
  }
  const destination = plan.destination;
  const deleted: string[] = [];
  const where = `point ${p.point} of set ${p.setId}`;
  let partial = '';

  const finishInto = async (): Promise<string> => {
    const conn = host.libvirt;
    if (!conn) throw new StrataError('unavailable', `${host.label} is not connected`);
    const state = await conn.domainState(p.domain);
    if (state !== 'shutoff') {
      throw new StrataError('conflict', `${p.domain} was started during the restore (${state}): its disk was not switched; the restored image is in ${destination}`);
    }
    const before = plan.oldChain[0]!;
    const format = definedSource(await conn.domainXml(p.domain, { inactive: true }), p.disk).format ?? 'qcow2';
    await defineNewChain(
      { inactiveXml: (d) => conn.domainXml(d, { inactive: true, secure: true }), define: async (xml) => void (await conn.defineXML(xml)) },
      p.domain,
      p.disk,
      { path: before, format },
      [{ path: destination, format: 'qcow2' }],
    );
    const stillShared = p.deleteOldChain.length > 0 ? await usersOf(host, p.domain, p.deleteOldChain) : new Map<string, string[]>();
    for (const path of p.deleteOldChain) {
      if (stillShared.has(path)) continue;
      try {
        await rm(path);
        deleted.push(path);
      } catch (err) {
        log.warn('a file of the old chain could not be deleted; it stays', { host: host.id, path, err });
      }
    }
    const kept = plan.oldChain.filter((f) => !deleted.includes(f));
    return (
      `; ${p.domain}'s definition now names ${destination} for ${p.disk} (it named ${before})` +
      (deleted.length ? `; deleted ${deleted.join(', ')}` : '') +
      (kept.length ? `; kept ${kept.join(', ')}` : '')
    );
  };

  const finish: OfflineFinish = async (outcome) => {
    if (outcome.status !== 'completed') {
      await rm(partial, { force: true });
      const unchanged = p.into === 'domain' ? `; ${p.domain} keeps its disk ${plan.oldChain[0]}, its definition unchanged` : '';
      const how = outcome.status === 'cancelled' ? 'cancelled' : `failed: ${outcome.message ?? 'qemu-storage-daemon gave no reason'}`;
      return { status: outcome.status, words: `${how}; the partial image was removed${unchanged}` };
    }
    const broken = outcome.checks.filter((c) => c.corruptions > 0);
    if (broken.length > 0) {
      await rm(partial, { force: true });
      return { status: 'failed', words: `failed: qemu-img check finds corruptions in the restored image (${broken.map((c) => c.detail).join('; ')}); it was removed` };
    }
    try {
      await publish(partial, destination);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
    const switched = p.into === 'domain' ? await finishInto() : '';
    return { status: 'completed', words: `completed: ${where} restored into ${destination}, which passes qemu-img check${switched}` };
  };

  const prepare = async (): Promise<{ operation: OfflineOperation; finish: OfflineFinish }> => {
    // Again as it starts: the job may have waited in the queue while things changed.
    await checkNewFile(destination);
    await checkHeaders(plan.images);
    if (p.into === 'domain') {
      const conn = host.libvirt;
      if (!conn) throw new StrataError('unavailable', `${host.label} is not connected`);
      const state = await conn.domainState(p.domain);
      if (state !== 'shutoff') throw new StrataError('conflict', `${p.domain} is ${state}: shut it down, or restore to a new file`);
      const now = definedSource(await conn.domainXml(p.domain, { inactive: true }), p.disk).path;
      if (now !== plan.oldChain[0]) throw new StrataError('conflict', `${p.domain}'s ${p.disk} now names ${now ?? 'no file'}, not ${plan.oldChain[0]}`, { hint: 'Preview the restore again.' });
    }
    partial = join(dirname(destination), `.${basename(destination)}.${randomBytes(4).toString('hex')}.restoring`);
    return { operation: { kind: 'copy', image: plan.images[plan.images.length - 1]!, destination: partial, format: 'qcow2', shallow: false }, finish };
  };

  // Listened to before the start: a small restore can end before the start returns.
  const ends = new Map<string, Job>();
  let wake: (() => void) | null = null;
  const stop = hub.on((event, data) => {
    if (event !== 'job') return;
    const job = data as JobEvent;
    if (job.transition === 'ended' && job.hostId === host.id && job.domain === p.domain && job.disk === p.disk && job.type === 'restore') {
      ends.set(job.id, job);
      wake?.();
    }
  });
  try {
    const job = await host.startOfflineOwn(p.domain, p.disk, 'restore', p.bandwidthBytesPerSec, prepare);
    log.info('restore started', { host: host.id, domain: p.domain, set: p.setId, point: p.point, disk: p.disk, into: p.into, destination, job: job.id });
    if (!p.wait) return { plan, job, path: destination, bytes: null, deleted };
    while (!ends.has(job.id)) await new Promise<void>((resolve) => (wake = resolve));
    const ended = ends.get(job.id)!;
    if (ended.phase !== 'completed') {
      throw new StrataError('conflict', `The restore of ${where} ${ended.phase === 'cancelled' ? 'was aborted' : 'failed'}: ${ended.outcome ?? ended.phase}`, {
        hint: existsSync(destination) ? `The restored image is in ${destination}.` : null,
      });
    }
    return { plan, job: ended, path: destination, bytes: (await stat(destination)).size, deleted };
  } finally {
    stop();
  }
}
