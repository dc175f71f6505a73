// Persistent dirty bitmaps in a shut-off domain's qcow2 chain: the record of writes since a
// checkpoint that an incremental backup reads. libvirt 9.0 names a checkpoint's bitmap after it
// and keeps it in the active layer (every write to an image QEMU opens read-write is recorded in
// its enabled bitmaps: a guest's, qemu-io's, a daemon's); it cannot create or delete checkpoints of
// a shut-off domain, so the offline engine adds the bitmap itself and libvirt's record is
// redefined around it. Whether a bitmap still tells every write since its checkpoint is judged
// here from the image headers, before anything runs.
import { resolve } from 'node:path';
import { readImageChain, runImageTool } from './image-tool.ts';
import { MERGED_BITMAP } from './plan.ts';
import { type QmpValue } from './qmp.ts';
import { chainBlockdevs, layerNode, StorageDaemon } from './storage-daemon.ts';

export interface LayerBitmaps {
  path: string;
  format: string;
  bitmaps: { name: string; flags: string[]; granularity: number }[];
}

interface RawBitmapInfo {
  filename?: string;
  format?: string;
  'full-backing-filename'?: string;
  'virtual-size'?: number;
  'format-specific'?: { type?: string; data?: { bitmaps?: { name?: string; flags?: string[]; granularity?: number }[] } };
}

/** The chain under `image`, active layer first, with each qcow2 layer's bitmaps as its header lists them. */
export async function readChainBitmaps(image: string): Promise<LayerBitmaps[]> {
  // -U: read as it is even while another process holds it (its flags then show 'in-use').
  const parsed: unknown = JSON.parse(await runImageTool('qemu-img', ['info', '--backing-chain', '--output=json', '-U', resolve(image)]));
  const list = (Array.isArray(parsed) ? parsed : [parsed]) as RawBitmapInfo[];
  return list.map((info, i) => ({
    path: i === 0 ? resolve(image) : resolve(list[i - 1]?.['full-backing-filename'] ?? info.filename ?? ''),
    format: info.format ?? 'raw',
    bitmaps: (info['format-specific']?.data?.bitmaps ?? []).map((b) => ({ name: b.name ?? '', flags: b.flags ?? [], granularity: b.granularity ?? 0 })),
  }));
}

export type IncrementalSource =
  /** The top `layers` layers hold the bitmap, each recording: together they hold every write since. */
  | { ok: true; layers: number }
  | { ok: false; reason: string };

/**
 * Whether `bitmap` in the chain still marks every write since its checkpoint. `checkpointImage` is
 * the active image when the checkpoint was made (its `<domain>`'s disk source): writes since then
 * went to it or to layers added above it, so each of those must hold a consistent, recording copy
 * of the bitmap. A layer without one (a copy or a commit that did not carry the bitmaps), a bitmap
 * marked in use (a process ended without closing the image: QEMU treats it as inconsistent) or a
 * disabled one means the next backup must be full.
 */
export function incrementalSource(chain: readonly LayerBitmaps[], bitmap: string, checkpointImage: string | null): IncrementalSource {
  const active = chain[0];
  if (!active) return { ok: false, reason: 'the disk has no image' };
  let bottom = checkpointImage === null ? -1 : chain.findIndex((l) => l.path === checkpointImage);
  if (checkpointImage !== null && bottom < 0) {
    return { ok: false, reason: `${checkpointImage}, the disk's image when checkpoint ${bitmap} was made, is no longer in its chain (${chain.map((l) => l.path).join(' → ')})` };
  }
  if (bottom < 0) {
    // libvirt's record names no image: the contiguous run of layers holding the bitmap from the top.
    bottom = 0;
    while (bottom + 1 < chain.length && chain[bottom + 1]!.bitmaps.some((b) => b.name === bitmap)) bottom += 1;
  }
  for (let i = 0; i <= bottom; i++) {
    const layer = chain[i]!;
    const found = layer.bitmaps.find((b) => b.name === bitmap);
    if (layer.format !== 'qcow2') return { ok: false, reason: `${layer.path} is ${layer.format}, which holds no dirty bitmaps` };
    if (!found) {
      return {
        ok: false,
        reason:
          i === 0
            ? `${layer.path} holds no bitmap ${bitmap}: the disk moved to it (a copy, or a commit) without the checkpoint's bitmap, so its writes since are not recorded`
            : `${layer.path} holds no bitmap ${bitmap}: writes into it since the checkpoint are not recorded`,
      };
    }
    if (found.flags.includes('in-use')) {
      return { ok: false, reason: `bitmap ${bitmap} in ${layer.path} is marked in use: a process that had the image open ended without closing it, so QEMU no longer trusts it` };
    }
    if (!found.flags.includes('auto')) return { ok: false, reason: `bitmap ${bitmap} in ${layer.path} is disabled: it did not record writes` };
  }
  return { ok: true, layers: bottom + 1 };
}

/**
 * The bytes an incremental from `bitmap` would copy: the bitmap of the top `layers` layers merged,
 * as the backup itself merges them, counted by a qemu-storage-daemon that opens the chain read-only.
 */
export async function dirtyBytesSince(image: string, bitmap: string, layers: number): Promise<number> {
  const chain = await readImageChain(image, { forceShare: true });
  // force-share: the count takes no lock, so a domain started meanwhile is not refused for it.
  const daemon = await StorageDaemon.start({ nodes: chainBlockdevs(chain, new Set()).map((n) => ({ ...n, 'force-share': true })) });
  try {
    await daemon.qmp.execute('block-dirty-bitmap-add', { node: layerNode(0), name: MERGED_BITMAP, persistent: false, disabled: true });
    const sources = Array.from({ length: layers }, (_, i) => ({ node: layerNode(i), name: bitmap }));
    await daemon.qmp.execute('block-dirty-bitmap-merge', { node: layerNode(0), target: MERGED_BITMAP, bitmaps: sources });
    const nodes: QmpValue = await daemon.qmp.execute('query-named-block-nodes', { flat: true });
    for (const node of Array.isArray(nodes) ? nodes : []) {
      if (typeof node !== 'object' || node === null || Array.isArray(node) || node['node-name'] !== layerNode(0)) continue;
      const maps = node['dirty-bitmaps'];
      for (const b of Array.isArray(maps) ? maps : []) {
        if (typeof b === 'object' && b !== null && !Array.isArray(b) && b['name'] === MERGED_BITMAP) return Number(b['count'] ?? 0);
      }
    }
    throw new Error(`qemu-storage-daemon listed no bitmap ${MERGED_BITMAP} on ${image}`);
  } finally {
    await daemon.stop();
  }
}

/** Removes `bitmap` from every layer of the chain under `image` that holds it (`qemu-img bitmap --remove`). */
export async function removeBitmap(image: string, bitmap: string): Promise<string[]> {
  const removed: string[] = [];
  for (const layer of await readChainBitmaps(image)) {
    if (!layer.bitmaps.some((b) => b.name === bitmap)) continue;
    await runImageTool('qemu-img', ['bitmap', '--remove', '-f', layer.format, layer.path, bitmap]);
    removed.push(layer.path);
  }
  return removed;
}
