// What an offline operation does to a chain, worked out from the image headers before anything
// runs: which layers QEMU opens writable, the QMP command that starts the job, and the chain
// afterwards. Layers are named by path (a shut-off domain has no libvirt `vda[N]` indices).
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { ImageLayer } from './image-tool.ts';
import { layerNode } from './storage-daemon.ts';
import type { QmpObject } from './qmp.ts';

export type OfflineOperation =
  /** Data of the layers above `base` moves into the active layer; `base` null pulls everything. */
  | { kind: 'pull'; image: string; base: string | null }
  /** Data of `top` and the layers down to `base` (exclusive) moves into `base`. */
  | { kind: 'commit'; image: string; top: string; base: string }
  /** The disk moves to a new file: everything (full), or only the active layer over the same backing (shallow). */
  | { kind: 'copy'; image: string; destination: string; format: 'qcow2' | 'raw'; shallow: boolean }
  /**
   * The disk as it is now into a new qcow2 file, the chain unchanged: all of it, or (incremental)
   * only the clusters the persistent dirty bitmap `incremental.bitmap` marks in the top
   * `incremental.layers` layers, over the previous backup's image `incremental.backing` (written
   * into the new file's header as given). `bitmap` is added to the active layer as the backup
   * starts (persistent, recording), so the next backup can start from here; null adds none.
   */
  | {
      kind: 'backup';
      image: string;
      destination: string;
      bitmap: string | null;
      incremental: { bitmap: string; layers: number; backing: string } | null;
    };

export class OfflinePlanError extends Error {
  override name = 'OfflinePlanError';
}

export const TARGET_FILE_NODE = 'strata-target-file';
export const TARGET_NODE = 'strata-target';
/** A backup's temporary bitmap: the checkpoint's bitmaps of every layer that has one, merged. */
export const MERGED_BITMAP = 'strata-since';

export interface QmpStep {
  command: string;
  args: QmpObject;
}

export interface OfflinePlan {
  operation: OfflineOperation;
  /** The chain before, active layer first. */
  chain: ImageLayer[];
  /** Indices into `chain` that QEMU must open writable. */
  writable: Set<number>;
  /** block-stream, block-commit or blockdev-mirror. */
  command: string;
  /** Its arguments, without job-id and speed. */
  args: QmpObject;
  /** Goes through READY and needs `job-complete` (mirror, active commit). */
  completesAtReady: boolean;
  /**
   * The image to create before the job (a copy's or a backup's destination). `openBacking`
   * 'header': QEMU opens the backing file its header names (a previous backup, outside the chain);
   * otherwise the target sits on the chain's second layer, or on nothing.
   */
  target: { path: string; format: 'qcow2' | 'raw'; virtualSize: number; backing: { recorded: string; format: string } | null; openBacking?: 'header' } | null;
  /** Commands run in order after the target is added and before the job starts. */
  prepare: QmpStep[];
  /** Commands run when the job ends without completing, before the daemon quits (undoing `prepare`). */
  undo: QmpStep[];
  /** The chain afterwards, active layer first: paths and formats. */
  chainAfter: { path: string; format: string }[];
}

function indexOf(chain: readonly ImageLayer[], path: string, what: string): number {
  const i = chain.findIndex((l) => l.path === resolve(path));
  if (i < 0) throw new OfflinePlanError(`${what} ${path} is not in the disk's chain (${chain.map((l) => l.path).join(' → ')})`);
  return i;
}

/**
 * The backing string to write into an image in `fromDir` that will sit on chain[target]: the string
 * the chain already used for that layer when it still resolves the same from `fromDir` (so a
 * relative link stays relative), else the layer's absolute path.
 */
export function backingStringFor(chain: readonly ImageLayer[], target: number, fromDir: string): string {
  const recorded = chain[target - 1]?.backingRecorded ?? null;
  const layer = chain[target]!;
  if (recorded && (isAbsolute(recorded) ? recorded === layer.path : resolve(fromDir, recorded) === layer.path)) return recorded;
  return layer.path;
}

const layerOf = (l: ImageLayer): { path: string; format: string } => ({ path: l.path, format: l.format });

/** `resumed`: the plan of a job already under way, whose copy destination exists by now. */
export function planOffline(operation: OfflineOperation, chain: readonly ImageLayer[], options: { resumed?: boolean } = {}): OfflinePlan {
  const active = chain[0];
  if (!active || active.path !== resolve(operation.image)) {
    throw new OfflinePlanError(`the chain read from the images does not start at ${operation.image}`);
  }
  const base = { operation, chain: [...chain], prepare: [], undo: [] };
  switch (operation.kind) {
    case 'pull': {
      const baseIdx = operation.base === null ? chain.length : indexOf(chain, operation.base, 'the base');
      if (baseIdx <= 1) throw new OfflinePlanError(`nothing to pull: ${operation.base ?? active.path} is already the active layer's backing file`);
      const args: QmpObject = { device: layerNode(0) };
      if (baseIdx < chain.length) {
        args['base-node'] = layerNode(baseIdx);
        args['backing-file'] = backingStringFor(chain, baseIdx, dirname(active.path));
      }
      return {
        ...base,
        writable: new Set([0]),
        command: 'block-stream',
        args,
        completesAtReady: false,
        target: null,
        chainAfter: [active, ...chain.slice(baseIdx)].map(layerOf),
      };
    }
    case 'commit': {
      const topIdx = indexOf(chain, operation.top, 'the top');
      const baseIdx = indexOf(chain, operation.base, 'the base');
      if (baseIdx <= topIdx) throw new OfflinePlanError(`the base ${operation.base} must lie below the top ${operation.top} in the chain`);
      const writable = new Set<number>();
      for (let i = Math.max(topIdx - 1, 0); i <= baseIdx; i++) writable.add(i);
      const args: QmpObject = { device: layerNode(0), 'base-node': layerNode(baseIdx) };
      if (topIdx > 0) {
        args['top-node'] = layerNode(topIdx);
        args['backing-file'] = backingStringFor(chain, baseIdx, dirname(chain[topIdx - 1]!.path));
      }
      return {
        ...base,
        writable,
        command: 'block-commit',
        args,
        completesAtReady: topIdx === 0,
        target: null,
        chainAfter: [...chain.slice(0, topIdx), ...chain.slice(baseIdx)].map(layerOf),
      };
    }
    case 'copy': {
      const destination = resolve(operation.destination);
      if (chain.some((l) => l.path === destination)) throw new OfflinePlanError(`${destination} is a layer of this chain: choose a new file`);
      if (!options.resumed && existsSync(destination)) throw new OfflinePlanError(`${destination} already exists: choose a new file, or remove it first`);
      const shallow = operation.shallow && chain.length > 1;
      if (shallow && operation.format === 'raw') {
        throw new OfflinePlanError('a shallow copy keeps the backing chain, which a raw image cannot name: copy in full, or to qcow2');
      }
      const backing = shallow ? { recorded: backingStringFor(chain, 1, dirname(destination)), format: chain[1]!.format } : null;
      return {
        ...base,
        writable: new Set(),
        command: 'blockdev-mirror',
        args: { device: layerNode(0), target: TARGET_NODE, sync: shallow ? 'top' : 'full' },
        completesAtReady: true,
        target: { path: destination, format: operation.format, virtualSize: active.virtualSize, backing },
        chainAfter: [{ path: destination, format: operation.format }, ...chain.slice(shallow ? 1 : chain.length).map(layerOf)],
      };
    }
    case 'backup': {
      const destination = resolve(operation.destination);
      if (chain.some((l) => l.path === destination)) throw new OfflinePlanError(`${destination} is a layer of this chain: choose a new file`);
      if (!options.resumed && existsSync(destination)) throw new OfflinePlanError(`${destination} already exists: choose a new file, or remove it first`);
      const inc = operation.incremental;
      if (inc && inc.layers > chain.length) throw new OfflinePlanError(`the chain has ${chain.length} layers, not the ${inc.layers} that hold bitmap ${inc.bitmap}`);
      const prepare: QmpStep[] = [];
      const undo: QmpStep[] = [];
      if (inc) {
        // One bitmap for the job, read-only to it ('never'): the checkpoint's own bitmaps stay as
        // they are, for the next incremental from the same checkpoint.
        prepare.push({ command: 'block-dirty-bitmap-add', args: { node: layerNode(0), name: MERGED_BITMAP, persistent: false, disabled: true } });
        const sources = Array.from({ length: inc.layers }, (_, i) => ({ node: layerNode(i), name: inc.bitmap }));
        prepare.push({ command: 'block-dirty-bitmap-merge', args: { node: layerNode(0), target: MERGED_BITMAP, bitmaps: sources } });
      }
      if (operation.bitmap !== null) {
        // Added before the job starts and with nothing else writing (the daemon holds the active
        // layer's write lock): it records every write after the data the backup reads.
        prepare.push({ command: 'block-dirty-bitmap-add', args: { node: layerNode(0), name: operation.bitmap, persistent: true } });
        undo.push({ command: 'block-dirty-bitmap-remove', args: { node: layerNode(0), name: operation.bitmap } });
      }
      return {
        ...base,
        prepare,
        undo,
        writable: operation.bitmap !== null ? new Set([0]) : new Set(),
        command: 'blockdev-backup',
        args: inc
          ? { device: layerNode(0), target: TARGET_NODE, sync: 'bitmap', bitmap: MERGED_BITMAP, 'bitmap-mode': 'never' }
          : { device: layerNode(0), target: TARGET_NODE, sync: 'full' },
        completesAtReady: false,
        target: {
          path: destination,
          format: 'qcow2',
          virtualSize: active.virtualSize,
          backing: inc ? { recorded: inc.backing, format: 'qcow2' } : null,
          ...(inc ? { openBacking: 'header' as const } : {}),
        },
        chainAfter: chain.map(layerOf),
      };
    }
  }
}
