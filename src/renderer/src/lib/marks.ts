// Which layers of a chain an operation touches, to mark them on the chain: what a running job
// reads and writes, and what an operation being planned would drop or delete.
import type { JobOperation } from '../../../shared/contract.ts';
import type { ChainPreview, Job, Layer } from '../../../shared/model.ts';

export type LayerMark = 'reads' | 'writes' | 'drops' | 'deletes' | 'new';

export type Marks = ReadonlyMap<string, readonly LayerMark[]>;

function add(marks: Map<string, LayerMark[]>, layers: readonly Layer[], mark: LayerMark): void {
  for (const layer of layers) marks.set(layer.path, [...(marks.get(layer.path) ?? []), mark]);
}

function position(chain: readonly Layer[], index: number | undefined, fallback: number): number {
  if (index === undefined) return fallback;
  const at = chain.findIndex((l) => l.index === index);
  return at < 0 ? fallback : at;
}

/**
 * A running job's reads and writes. The operation Strata sent says exactly which layers; for a
 * job started elsewhere only its type is known, so the widest reading of that type is shown.
 */
export function jobMarks(chain: readonly Layer[], job: Job, operation: JobOperation | null): Marks {
  const marks = new Map<string, LayerMark[]>();
  const bottom = chain.length - 1;
  if (job.type === 'pull') {
    const base = operation?.kind === 'pull' ? position(chain, operation.base, chain.length) : chain.length;
    add(marks, chain.slice(1, base), 'reads');
    add(marks, chain.slice(0, 1), 'writes');
  } else if (job.type === 'commit' || job.type === 'active-commit') {
    const commit = operation?.kind === 'commit' ? operation : null;
    const top = position(chain, commit?.top, job.type === 'active-commit' ? 0 : 1);
    const base = position(chain, commit?.base, bottom);
    add(marks, chain.slice(top, base), 'reads');
    add(marks, chain.slice(base, base + 1), 'writes');
  } else if (job.type === 'copy') {
    add(marks, operation?.kind === 'copy' && operation.shallow ? chain.slice(0, 1) : chain, 'reads');
  }
  return marks;
}

/** What a planned operation would do to the current chain. */
export function previewMarks(preview: ChainPreview): Marks {
  const marks = new Map<string, LayerMark[]>();
  add(marks, preview.unused, 'drops');
  add(marks, preview.deleted, 'deletes');
  return marks;
}
