// What is done with the sets in a backup folder: list them, restore a point, verify a set, remove
// one with the checkpoints only it started from.
import type { BackupResults, BackupSet } from '../../../shared/backup.ts';
import type { ValidParams } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import { log } from '../../log/logger.ts';
import type { BackupContext, BackupHost } from './context.ts';
import { deleteOfflineCheckpoint } from './offline.ts';
import { verifySet } from './restore.ts';
import { RemoteFiles } from './files.ts';
import { planRestore, startRestore } from './restore-job.ts';
import { planRemoteRestore, startRemoteRestore } from './restore-remote.ts';
import type { BackupStore } from './store.ts';

export async function listSets(ctx: BackupContext, host: BackupHost, domain?: string): Promise<BackupSet[]> {
  ctx.refuseRemote(host);
  // A remote host with no folder chosen has no sets yet: the settings say what to choose.
  if ((await ctx.location(host)).source === 'unset') return [];
  return (await ctx.store(host)).list(domain);
}

export async function removeSet(ctx: BackupContext, host: BackupHost, store: BackupStore, set: BackupSet): Promise<void> {
  await store.remove(set.domain, set.id);
  ctx.changed(host.id, set.domain, set.id, null, 'removed');
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
    // libvirt deletes a shut-off domain's checkpoint only as metadata: its bitmaps go separately,
    // by Strata on this machine; a remote host's images are not here (a shut-off domain there
    // keeps the checkpoint, which libvirt then refuses to delete: said in the log).
    const offline = store.files.remote !== null ? false : await deleteOfflineCheckpoint(host, set.domain, point.checkpoint).catch((err: unknown) => {
      log.debug('could not delete a checkpoint of a removed set', { host: host.id, checkpoint: point.checkpoint, err });
      return true;
    });
    if (offline) continue;
    await conn.checkpointDelete(set.domain, point.checkpoint).catch((err: unknown) => log.debug('could not delete a checkpoint of a removed set', { host: host.id, checkpoint: point.checkpoint, err }));
  }
}

export async function removeBackup(ctx: BackupContext, host: BackupHost, p: ValidParams<'backup.remove'>): Promise<{ removed: string }> {
  ctx.refuseRemote(host);
  if (!p.confirm.includes('delete-files')) {
    throw new StrataError('conflict', `removing set ${p.setId} deletes its images`, { hint: "Send confirm: ['delete-files'] to remove it." });
  }
  const store = await ctx.store(host);
  const { set } = await store.get(p.domain, p.setId);
  if (set.points.some((q) => q.status === 'running') && ctx.isRunning(host.id, p.domain)) {
    throw new StrataError('conflict', `a backup into set ${p.setId} is running`, { hint: 'Abort it or wait for it to end first.' });
  }
  await removeSet(ctx, host, store, set);
  return { removed: p.setId };
}

export async function previewRestore(ctx: BackupContext, host: BackupHost, p: ValidParams<'backup.restorePreview'>): Promise<BackupResults['backup.restorePreview']> {
  ctx.refuseRemote(host);
  const store = await ctx.store(host);
  // A remote host's set is restored on that host, by its qemu-img.
  if (store.files instanceof RemoteFiles) return planRemoteRestore(store, store.files, p);
  return planRestore(host, store, p);
}

export async function restoreBackup(ctx: BackupContext, host: BackupHost, p: ValidParams<'backup.restore'>): Promise<BackupResults['backup.restore']> {
  ctx.refuseRemote(host);
  const store = await ctx.store(host);
  if (store.files instanceof RemoteFiles) return startRemoteRestore(host, store, store.files, ctx.env.hub, p);
  return startRestore(host, store, ctx.env.hub, p);
}

export async function verifyBackup(ctx: BackupContext, host: BackupHost, p: ValidParams<'backup.verify'>): Promise<BackupResults['backup.verify']> {
  ctx.refuseRemote(host);
  const store = await ctx.store(host);
  const { manifest } = await store.get(p.domain, p.setId);
  return verifySet(p.setId, store.setFolder(p.domain, p.setId), manifest, store.files);
}
