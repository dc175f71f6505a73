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
  | { kind: 'copy'; image: string; destination: string; format: 'qcow2' | 'raw'; shallow: boolean };

export class OfflinePlanError extends Error {
  override name = 'OfflinePlanError';
}

export const TARGET_FILE_NODE = 'strata-target-file';
export const TARGET_NODE = 'strata-target';

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
  /** The image to create before the job (a copy's destination). */
  target: { path: string; format: 'qcow2' | 'raw'; virtualSize: number; backing: { recorded: string; format: string } | null } | null;
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
  const base = { operation, chain: [...chain] };
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
  }
}
