// What an operation will do to a disk's backing chain, computed before anything runs: the chain
// afterwards, the layers that become unused or deleted, the image created, and the confirmations
// the request must carry. The operations themselves run exactly what the preview shows.
import type { Operation } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { ChainPreview, Confirmation, Disk, Layer } from '../../../shared/model.ts';

/** What the chain alone tells; the host adds what other domains share (see sharedWith). */
type ChainOnly = Omit<ChainPreview, 'sharedWith' | 'bytesToMove'>;

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

function invalid(message: string, hint?: string): StrataError {
  return new StrataError('invalid-request', message, { hint: hint ?? null });
}

function describe(disk: Disk, layer: Layer): string {
  return layer.index === null ? layer.path : `${disk.target}[${layer.index}] ${layer.path}`;
}

/** Finds a layer by libvirt's index; `what` names it in errors ("base", "top"). */
export function layerAt(disk: Disk, index: number, what: string): { layer: Layer; position: number } {
  const position = disk.chain.findIndex((l) => l.index === index);
  const layer = disk.chain[position];
  if (!layer) {
    const known = disk.chain.filter((l) => l.index !== null).map((l) => `${disk.target}[${l.index}]`);
    throw invalid(`${what} ${disk.target}[${index}] is not a layer of ${disk.target}`, known.length ? `Its layers are ${known.join(', ')}.` : 'The domain must be running for its layers to be named.');
  }
  return { layer, position };
}

function newImage(path: string, format: string): Layer {
  return { index: null, type: 'file', path, format, sizes: null };
}

function requireBacking(disk: Disk, what: string): void {
  if (disk.chain.length < 2) {
    throw new StrataError('conflict', `${disk.target} has no backing image: there is nothing to ${what}`, {
      hint: 'The chain has a single layer.',
    });
  }
}

function previewPull(disk: Disk, base: number | undefined): ChainOnly {
  requireBacking(disk, 'pull');
  const chain = disk.chain;
  const active = chain[0]!;
  if (base === undefined) {
    const unused = chain.slice(1);
    return {
      summary: `Copy the data of ${plural(unused.length, 'backing layer')} into the active layer; afterwards ${disk.target} has no backing image.`,
      before: chain,
      after: [active],
      unused,
      deleted: [],
      created: null,
      needs: [],
      warnings: ['The active layer grows by the data it copies; check that its file system has room.'],
    };
  }
  const { position } = layerAt(disk, base, 'base');
  if (position === 0) throw invalid('base cannot be the active layer: a pull copies data into it from below');
  if (position === 1) {
    throw new StrataError('conflict', `${describe(disk, chain[1]!)} is already the active layer's backing image: there is nothing to pull`);
  }
  const unused = chain.slice(1, position);
  return {
    summary: `Copy the data of ${plural(unused.length, 'layer')} above ${describe(disk, chain[position]!)} into the active layer, which then rests on it directly.`,
    before: chain,
    after: [active, ...chain.slice(position)],
    unused,
    deleted: [],
    created: null,
    needs: [],
    warnings: ['The active layer grows by the data it copies; check that its file system has room.'],
  };
}

function previewCommit(disk: Disk, op: Extract<Operation, { kind: 'commit' }>): ChainOnly {
  requireBacking(disk, 'commit');
  const chain = disk.chain;
  const top = op.top === undefined ? { layer: chain[0]!, position: 0 } : layerAt(disk, op.top, 'top');
  const bottom = chain.length - 1;
  const base = op.base === undefined ? { layer: chain[bottom]!, position: bottom } : layerAt(disk, op.base, 'base');
  if (base.position <= top.position) {
    throw invalid(`base ${describe(disk, base.layer)} must lie below top ${describe(disk, top.layer)} in the chain`);
  }
  const active = top.position === 0;
  if (!active && op.afterReady !== undefined) {
    throw invalid('afterReady applies only to an active commit (top is the active layer): an inactive commit ends by itself');
  }
  const afterReady = op.afterReady ?? 'wait';
  const moving = chain.slice(top.position, base.position);
  const keep = active && afterReady === 'keep';
  const unused = keep ? [] : moving;
  const after = keep ? chain : [...chain.slice(0, top.position), ...chain.slice(base.position)];
  if (op.deleteLayers && keep) throw invalid("deleteLayers cannot go with afterReady 'keep': the layers stay in use");
  const deleted = op.deleteLayers ? unused : [];
  const needs: Confirmation[] = [];
  if (unused.length > 0) needs.push('drop-layers');
  if (deleted.length > 0) needs.push('delete-files');
  const warnings = [
    `${describe(disk, base.layer)} is changed in place: anything else that uses it as a backing image (another disk, an older snapshot) sees the change.`,
  ];
  if (!active) warnings.push('The layers committed are no longer valid images afterwards, even if the job is aborted midway.');
  if (active && afterReady === 'wait') warnings.push('The job waits at ready until you pivot (the chain above) or keep the current chain.');
  const into = describe(disk, base.layer);
  const summary = keep
    ? `Copy the data of ${plural(moving.length, 'layer')} down into ${into}, then keep the current chain.`
    : `Merge ${plural(moving.length, 'layer')} down into ${into}${active ? ', which becomes the active layer' : ''}; ${plural(unused.length, 'layer')} leave${unused.length === 1 ? 's' : ''} the chain${deleted.length ? ' and are deleted' : ''}.`;
  return { summary, before: chain, after, unused, deleted, created: null, needs, warnings };
}

function previewCopy(disk: Disk, op: Extract<Operation, { kind: 'copy' }>): ChainOnly {
  const chain = disk.chain;
  if (chain.length === 0) throw new StrataError('conflict', `${disk.target} has no medium to copy`);
  if (chain.some((l) => l.path === op.destination)) {
    throw invalid(`destination ${op.destination} is a layer of ${disk.target} itself`, 'Choose a new file for the copy.');
  }
  const target = newImage(op.destination, op.format);
  const switched = op.shallow ? [target, ...chain.slice(1)] : [target];
  const keep = op.afterReady === 'keep';
  const needs: Confirmation[] = op.reuseExisting ? ['reuse-existing-file'] : [];
  const warnings: string[] = [];
  if (op.reuseExisting) warnings.push(`${op.destination} exists and is written over: what it holds now is lost.`);
  if (op.shallow) warnings.push('A shallow copy keeps the backing layers: the new image is only usable on top of them.');
  if (op.afterReady === 'wait') warnings.push('The copy waits at ready, mirroring new writes, until you pivot to it or keep the current chain.');
  if (op.synchronousWrites) warnings.push('Guest writes wait for the copy too: slower for the guest, but the copy converges under heavy writes.');
  return {
    summary: keep
      ? `Copy ${disk.target} to ${op.destination} (${op.format}) and keep using the current chain.`
      : `Copy ${op.shallow ? 'the active layer' : 'the whole chain'} of ${disk.target} to ${op.destination} (${op.format}), then switch the disk to it.`,
    before: chain,
    after: keep ? chain : switched,
    unused: keep ? [] : op.shallow ? chain.slice(0, 1) : chain,
    deleted: [],
    created: op.reuseExisting ? null : { path: op.destination, format: op.format },
    needs,
    warnings,
  };
}

/** Where a snapshot's new layer goes when no destination is given: beside the active layer. */
export function defaultSnapshotPath(activePath: string, now: Date): string {
  const slash = activePath.lastIndexOf('/');
  const dir = activePath.slice(0, slash + 1);
  const stem = activePath.slice(slash + 1).replace(/\.(qcow2|img|raw)$/, '');
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${dir}${stem}.${stamp}.qcow2`;
}

function previewSnapshot(disk: Disk, destination: string | undefined, now: Date): ChainOnly {
  const active = disk.chain[0];
  if (!active) throw new StrataError('conflict', `${disk.target} has no medium to snapshot`);
  if (active.type !== 'file') throw invalid(`${disk.target}'s active layer is not a file: give a destination for the new layer`);
  const path = destination ?? defaultSnapshotPath(active.path, now);
  if (disk.chain.some((l) => l.path === path)) throw invalid(`destination ${path} is already a layer of ${disk.target}`);
  return {
    summary: `Add a new qcow2 layer ${path} on top of ${disk.target}; the current active layer becomes read-only backing.`,
    before: disk.chain,
    after: [newImage(path, 'qcow2'), ...disk.chain],
    unused: [],
    deleted: [],
    created: { path, format: 'qcow2' },
    needs: [],
    warnings: disk.chain.length > 8 ? [`The chain already has ${disk.chain.length} layers; long chains slow reads. Consider a pull or commit.`] : [],
  };
}

export function previewOperation(disk: Disk, op: Operation, now = new Date()): ChainPreview {
  const preview = chainPreview(disk, op, now);
  return { ...preview, sharedWith: [], bytesToMove: bytesToMove(disk, op, preview) };
}

function chainPreview(disk: Disk, op: Operation, now: Date): ChainOnly {
  switch (op.kind) {
    case 'pull':
      return previewPull(disk, op.base);
    case 'commit':
      return previewCommit(disk, op);
    case 'copy':
      return previewCopy(disk, op);
    case 'snapshot':
      return previewSnapshot(disk, op.destination, now);
  }
}

// The data a layer holds: a qcow2 file's size on the host is its clusters (plus a little
// metadata), while libvirt's allocation of a backing layer is only what QEMU wrote through it
// since start, often 0. A raw layer holds its whole virtual size.
function dataOf(layer: Layer): number | null {
  const sizes = layer.sizes;
  if (!sizes) return null;
  if (layer.format === 'raw') return sizes.capacity;
  return Math.min(sizes.physical, sizes.capacity);
}

function sum(layers: readonly Layer[]): number | null {
  let total = 0;
  for (const layer of layers) {
    const data = dataOf(layer);
    if (data === null) return null;
    total += data;
  }
  return total;
}

/** What the job copies: the layers whose data moves (pull, commit) or the image(s) mirrored (copy). */
function bytesToMove(disk: Disk, op: Operation, preview: ChainOnly): number | null {
  switch (op.kind) {
    case 'snapshot':
      return 0;
    case 'pull':
      return sum(preview.unused);
    case 'commit': {
      const top = op.top === undefined ? 0 : disk.chain.findIndex((l) => l.index === op.top);
      const base = op.base === undefined ? disk.chain.length - 1 : disk.chain.findIndex((l) => l.index === op.base);
      return sum(disk.chain.slice(top, base));
    }
    case 'copy': {
      const mirrored = sum(op.shallow ? disk.chain.slice(0, 1) : disk.chain);
      const capacity = disk.chain[0]?.sizes?.capacity;
      return mirrored === null || capacity === undefined ? mirrored : Math.min(mirrored, capacity);
    }
  }
}

/**
 * Refuses a request that lacks a confirmation its preview needs, naming each one. `op` names the
 * file a reusing copy writes over (its preview creates nothing, so `created` is null then).
 */
export function requireConfirmations(preview: ChainPreview, given: readonly Confirmation[], op?: Operation): void {
  const missing = preview.needs.filter((n) => !given.includes(n));
  if (missing.length === 0) return;
  const words: Record<Confirmation, string> = {
    'drop-layers': `${plural(preview.unused.length, 'layer')} leave the chain: ${preview.unused.map((l) => l.path).join(', ')}`,
    'delete-files': `the files ${preview.deleted.map((l) => l.path).join(', ')} are deleted`,
    'reuse-existing-file': `the existing file ${op?.kind === 'copy' ? op.destination : 'at the destination'} is written over`,
    'shared-layers': `other domains use layers this changes (${preview.sharedWith.map((s) => `${s.domain}: ${s.paths.join(', ')}`).join('; ')})`,
    'low-space': `the space the job needs is close to what is free where it writes (${preview.preflight?.neededBytes ?? '?'} bytes needed, ${preview.preflight?.freeBytes ?? '?'} free)`,
  };
  throw new StrataError('conflict', `Not run: this would lose data unless confirmed — ${missing.map((m) => words[m]).join('; ')}.`, {
    hint: `Preview the operation, then send it again with confirm: ${JSON.stringify(missing)}.`,
  });
}
