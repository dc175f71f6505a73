// A point's chain as the manifest names it, and verifying sets with qemu-img alone. A point's
// images are opened as that chain (the full backup at the bottom), spelled out as a json:
// description so nothing depends on what an image's header says its backing file is. Restoring
// is a job of the offline engine (restore-job.ts).
import { join } from 'node:path';
import type { BackupVerification } from '../../../shared/backup.ts';
import { StrataError } from '../../../shared/errors.ts';
import { imageCheck, qemuImgMessage, runQemuImg } from '../health/qemu-img.ts';
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

/** Every image passes `qemu-img check`, and every complete point's chain opens, for each disk. */
export async function verifySet(setId: string, folder: string, manifest: Manifest): Promise<BackupVerification> {
  const images: BackupVerification['images'] = [];
  for (const point of manifest.points) {
    if (point.status !== 'complete') continue;
    for (const image of point.images) {
      try {
        const check = await imageCheck(join(folder, image.file), 'qcow2', false);
        const bad = check === null ? 0 : check.corruptions + check.checkErrors;
        images.push({
          file: image.file,
          ok: bad === 0,
          message: check === null ? 'not checkable' : bad === 0 ? `no errors${check.leaks > 0 ? ` (${check.leaks} leaked clusters, harmless)` : ''}` : `${check.corruptions} corruptions, ${check.checkErrors} check errors`,
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
      const files = chainOf(manifest, point.index, disk.target);
      if (files.length === 0) {
        failures.push(`${disk.target}: the manifest names no whole chain`);
        continue;
      }
      // measure opens every image of the chain and reads its allocation; info would not open the backing images.
      const run = await runQemuImg(['measure', '--output=json', '-O', 'qcow2', chainSpec(folder, files)], openTimeoutMs);
      if (run.code !== 0) failures.push(`${disk.target}: ${qemuImgMessage(run)}`);
    }
    points.push({ index: point.index, ok: failures.length === 0, message: failures.length === 0 ? 'the chain opens' : failures.join('; ') });
  }
  return { setId, ok: images.every((i) => i.ok) && points.every((p) => p.ok) && points.length > 0, images, points };
}
