// A point's chain as the manifest names it, and verifying sets with qemu-img alone. A point's
// images are opened as that chain (the full backup at the bottom), spelled out as a json:
// description so nothing depends on what an image's header says its backing file is. Restoring
// is a job of the offline engine (restore-job.ts).
import { join } from 'node:path';
import type { BackupVerification } from '../../../shared/backup.ts';
import { StrataError } from '../../../shared/errors.ts';
import { parseCheck, qemuImgMessage } from '../health/qemu-img.ts';
import { localFiles, type BackupFiles } from './files.ts';
import type { Manifest } from './manifest.ts';
import { chainOf } from './store.ts';

interface ChainNode {
  driver: 'qcow2';
  file: { driver: 'file'; filename: string };
  backing: ChainNode | null;
}

/** The json: image name that opens `files` (full backup first) as one chain, read-only. */
export function chainSpec(folder: string, files: readonly string[]): string {
  let node: ChainNode | null = null;
  for (const file of files) node = { driver: 'qcow2', file: { driver: 'file', filename: join(folder, file) }, backing: node };
  if (node === null) throw new StrataError('internal', 'a restore needs at least one image');
  return `json:${JSON.stringify(node)}`;
}

const openTimeoutMs = 30_000;

export function pointChain(folder: string, manifest: Manifest, index: number, disk: string): string[] {
  const point = manifest.points.find((p) => p.index === index);
  if (!point) {
    throw new StrataError('not-found', `the set has no point ${index}`, { hint: `Its points are ${manifest.points.map((p) => p.index).join(', ')}.` });
  }
  if (point.status !== 'complete') throw new StrataError('conflict', `point ${index} of the set is ${point.status}: it cannot be restored`, { hint: 'Choose a complete point.' });
  const files = chainOf(manifest, index, disk);
  if (files.length === 0) {
    throw new StrataError('not-found', `point ${index} holds no image of ${disk}`, { hint: `The set's disks are ${manifest.disks.map((d) => d.target).join(', ')}.` });
  }
  return files;
}

/** qemu-img check where the files are: null when the format has no checks. */
async function check(files: BackupFiles, path: string): Promise<ReturnType<typeof parseCheck> | null> {
  const run = await files.qemuImg(['check', '--output=json', '-f', 'qcow2', '--', path], checkTimeoutMs);
  // 0: clean, 2: corruptions, 3: leaks only; each with the JSON report on stdout.
  if ((run.code === 0 || run.code === 2 || run.code === 3) && run.stdout.trim().startsWith('{')) return parseCheck(run.stdout);
  // 63: "This image format does not support checks".
  if (run.code === 63) return null;
  throw new StrataError('conflict', `qemu-img check could not finish on ${path}${files.remote ? ` (on ${files.remote})` : ''}: ${qemuImgMessage(run)}`);
}

const checkTimeoutMs = 120_000;

/** Every image passes `qemu-img check`, and every complete point's chain opens, for each disk. */
export async function verifySet(setId: string, folder: string, manifest: Manifest, files: BackupFiles = localFiles): Promise<BackupVerification> {
  const images: BackupVerification['images'] = [];
  for (const point of manifest.points) {
    if (point.status !== 'complete') continue;
    for (const image of point.images) {
      try {
        const checked = await check(files, join(folder, image.file));
        const bad = checked === null ? 0 : checked.corruptions + checked.checkErrors;
        images.push({
          file: image.file,
          ok: bad === 0,
          message: checked === null ? 'not checkable' : bad === 0 ? `no errors${checked.leaks > 0 ? ` (${checked.leaks} leaked clusters, harmless)` : ''}` : `${checked.corruptions} corruptions, ${checked.checkErrors} check errors`,
        });
      } catch (err) {
        images.push({ file: image.file, ok: false, message: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  const points: BackupVerification['points'] = [];
  for (const point of manifest.points) {
    if (point.status !== 'complete') continue;
    const failures: string[] = [];
    for (const disk of manifest.disks) {
      const chain = chainOf(manifest, point.index, disk.target);
      if (chain.length === 0) {
        failures.push(`${disk.target}: the manifest names no whole chain`);
        continue;
      }
      // measure opens every image of the chain and reads its allocation; info would not open the backing images.
      const run = await files.qemuImg(['measure', '--output=json', '-O', 'qcow2', chainSpec(folder, chain)], openTimeoutMs);
      if (run.code !== 0) failures.push(`${disk.target}: ${qemuImgMessage(run)}`);
    }
    points.push({ index: point.index, ok: failures.length === 0, message: failures.length === 0 ? 'the chain opens' : failures.join('; ') });
  }
  return { setId, ok: images.every((i) => i.ok) && points.every((p) => p.ok) && points.length > 0, images, points };
}
