// Backups of shut-off domains: each disk copied whole by the offline engine (qemu-storage-daemon,
// blockdev-mirror sync full) into the point's image, one job of type backup per disk, settled
// like a running domain's backup when the jobs end.
import { join } from 'node:path';
import type { BackupPoint, BackupResults } from '../../../shared/backup.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { DomainDetail, Job } from '../../../shared/model.ts';
import { toStrataError } from '../../libvirt/errors.ts';
import { log } from '../../log/logger.ts';
import type { BackupHost, Running } from './context.ts';
import type { BackupRunner } from './run.ts';
import type { BackupStore } from './store.ts';

/** Each disk copied whole by the offline engine into the point's image, one job per disk. */
export async function startOffline(runner: BackupRunner, host: BackupHost, store: BackupStore, detail: DomainDetail, disks: readonly string[], setId: string, point: BackupPoint, bandwidthBytesPerSec: number): Promise<BackupResults['backup.start']> {
  const ctx = runner.ctx;
  const folder = store.setFolder(detail.name, setId);
  const running: Running = { hostId: host.id, domain: detail.name, setId, point: point.index, checkpoint: point.checkpoint, jobIds: new Set(), ended: new Map(), host, store, offline: true, launching: true };
  const key = `${host.id}/${detail.name}`;
  ctx.running.set(key, running);
  runner.listen();
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
