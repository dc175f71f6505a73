// Restoring a remote host's point: the set is on that host, so the new file is too, written there by
// `qemu-img convert` run over the host's ssh, as a job of its own (engine 'qemu-img'): queued under
// the host's limits, with progress (qemu-img's -p) and abort (the process ended on the host). Its
// limit is qemu-img's -r, given at the start: it cannot change while it runs, which the plan says.
// The image is written under a temporary name beside the destination, checked, and only then
// linked to its name, so a failed or aborted restore leaves no file that looks whole. Unlike a
// block job it cannot outlive Strata (nothing would check and link the file after), so quitting
// aborts it. Into the domain is not offered: the domain's images are on that host, as for every
// offline operation there.
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { remoteRestoreIntoRefusal, type RestorePlan, type RestoreStarted } from '../../../shared/backup.ts';
import type { ValidParams } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { Job, JobEvent } from '../../../shared/model.ts';
import { log } from '../../log/logger.ts';
import type { EventHub } from '../api/event-hub.ts';
import { parseCheck, qemuImgMessage } from '../health/qemu-img.ts';
import type { BackupHost } from './context.ts';
import type { RemoteFiles } from './files.ts';
import { watchRemoteQemuImg, type RemoteQemuImg } from './remote-qemu-img.ts';
import { chainSpec, pointChain } from './restore.ts';
import type { BackupStore } from './store.ts';

type PreviewParams = ValidParams<'backup.restorePreview'>;
type RestoreParams = ValidParams<'backup.restore'>;

async function checkNewRemoteFile(files: RemoteFiles, destination: string): Promise<void> {
  if ((await files.size(destination)) !== null) {
    throw new StrataError('conflict', `${destination} already exists on ${files.remote}: a restore writes a new file`, { hint: 'Choose a file name that is not taken.' });
  }
  if (!(await files.isFolder(dirname(destination)))) {
    throw new StrataError('invalid-request', `${dirname(destination)} is not a folder on ${files.remote}`, { hint: 'Restore into an existing folder on that host.' });
  }
}

export async function planRemoteRestore(store: BackupStore, files: RemoteFiles, p: PreviewParams): Promise<RestorePlan> {
  const { manifest } = await store.get(p.domain, p.setId);
  const folder = store.setFolder(p.domain, p.setId);
  const chain = pointChain(folder, manifest, p.point, p.disk);
  const images = chain.map((f) => join(folder, f));
  const virtualBytes = manifest.disks.find((d) => d.target === p.disk)?.virtualBytes ?? null;
  const measured = await files.qemuImg(['measure', '--output=json', '-O', 'qcow2', chainSpec(folder, chain)], 60_000);
  const required = measured.code === 0 ? (JSON.parse(measured.stdout) as { required?: unknown }).required : null;
  if (p.destination === undefined) {
    throw new StrataError('invalid-request', `destination names the new image file on ${files.remote}`, { hint: 'Name a new file in a folder on that host.' });
  }
  await checkNewRemoteFile(files, p.destination);
  return {
    domain: p.domain,
    setId: p.setId,
    point: p.point,
    disk: p.disk,
    into: p.into,
    images,
    destination: p.destination,
    virtualBytes,
    bytesToWrite: typeof required === 'number' ? required : null,
    freeBytes: await files.freeBytes(dirname(p.destination)),
    definition: null,
    oldChain: [],
    deletable: [],
    sharedWith: [],
    bandwidth: 'fixed',
    refused: p.into === 'domain' ? remoteRestoreIntoRefusal(files.remote) : null,
  };
}

export async function startRemoteRestore(host: BackupHost, store: BackupStore, files: RemoteFiles, hub: EventHub, p: RestoreParams): Promise<RestoreStarted> {
  const plan = await planRemoteRestore(store, files, p);
  if (plan.refused) throw new StrataError('conflict', `Not restored: ${plan.refused}`);
  const destination = plan.destination;
  const where = `point ${p.point} of set ${p.setId}`;
  const folder = store.setFolder(p.domain, p.setId);
  const total = plan.virtualBytes ?? 10_000;

  const launch = async (limit: number, end: (status: 'completed' | 'failed' | 'cancelled', words: string) => void) => {
    // Again as it starts: the job may have waited in the queue while things changed.
    await checkNewRemoteFile(files, destination);
    const partial = join(dirname(destination), `.${basename(destination)}.${randomBytes(4).toString('hex')}.restoring`);
    const args = ['convert', '-p', ...(limit > 0 ? ['-r', String(limit)] : []), '-O', 'qcow2', chainSpec(folder, plan.images.map((i) => basename(i))), partial];
    // The first cancel's: an abort the user asked for stays one if Strata quits before it ended.
    let cause: 'abort' | 'quit' | null = null;
    /** Removes the partial image; the words say whether it went, for the job's outcome. */
    const removePartial = async (): Promise<string> => {
      try {
        await files.removeFile(partial);
        return 'the partial image was removed';
      } catch (e) {
        // Safe to go on: the job ends either way, and its outcome names the file to remove by hand.
        log.warn("could not remove a remote restore's partial image", { remote: files.remote, path: partial, err: e });
        return `its partial image ${partial} could not be removed (${e instanceof Error ? e.message : String(e)}): remove it on ${files.remote}`;
      }
    };
    const onClose = (code: number | null, run: RemoteQemuImg) => {
      void (async () => {
        if (run.cancelled) {
          end('cancelled', `${cause === 'quit' ? 'cancelled as Strata quit (nothing would finish it after)' : 'cancelled'}; ${await removePartial()}`);
          return;
        }
        if (code !== 0) {
          end('failed', `failed: ${qemuImgMessage({ code: code ?? -1, stdout: '', stderr: run.stderr() })}; ${await removePartial()}`);
          return;
        }
        const check = await files.qemuImg(['check', '--output=json', '-f', 'qcow2', '--', partial], 600_000);
        const checked = check.stdout.trim().startsWith('{') ? parseCheck(check.stdout) : null;
        if (checked === null || checked.corruptions + checked.checkErrors > 0) {
          end('failed', `failed: qemu-img check does not pass the restored image (${qemuImgMessage(check)}); ${await removePartial()}`);
          return;
        }
        try {
          await files.publish(partial, destination);
        } catch (e) {
          end('failed', `failed: ${e instanceof Error ? e.message : String(e)}; ${await removePartial()}`);
          return;
        }
        end('completed', `completed: ${where} restored into ${destination} on ${files.remote}, which passes qemu-img check`);
      })().catch((e: unknown) => end('failed', `failed: ${e instanceof Error ? e.message : String(e)}`));
    };
    const started = watchRemoteQemuImg(files, files.startQemuImg(args), onClose);
    return {
      poll: () => ({ type: 'restore' as const, bandwidthBytesPerSec: limit, cur: Math.round((started.percent() / 100) * total), end: total }),
      cancel: (why: 'abort' | 'quit') => {
        cause ??= why;
        return started.cancel();
      },
    };
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
    const job = await host.startOwn(p.domain, p.disk, 'restore', p.bandwidthBytesPerSec, 'qemu-img', launch);
    log.info('restore started on the remote host', { host: host.id, domain: p.domain, set: p.setId, point: p.point, disk: p.disk, destination, job: job.id });
    if (!p.wait) return { plan, job, path: destination, bytes: null, deleted: [] };
    while (!ends.has(job.id)) await new Promise<void>((resolve) => (wake = resolve));
    const ended = ends.get(job.id)!;
    if (ended.phase !== 'completed') {
      throw new StrataError('conflict', `The restore of ${where} ${ended.phase === 'cancelled' ? 'was aborted' : 'failed'}: ${ended.outcome ?? ended.phase}`);
    }
    return { plan, job: ended, path: destination, bytes: await files.size(destination), deleted: [] };
  } finally {
    stop();
  }
}
