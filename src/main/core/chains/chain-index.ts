// Which domains of a host use which image files, so a preview can name the other guests whose
// disks read a layer an operation writes into or deletes (a base shared by several domains).
// Fed by the chain reads the host makes anyway (the discovery of running domains after each
// lifecycle event, and every domain read), so a preview costs the same on any size of host.
import type { Operation } from '../../../shared/contract.ts';
import type { ChainPreview, Disk, SharedLayerUse } from '../../../shared/model.ts';

export class ChainIndex {
  /** Domain name → the paths of every layer of every disk it has. */
  readonly #paths = new Map<string, ReadonlySet<string>>();

  set(domain: string, disks: readonly Disk[]): void {
    this.#paths.set(domain, new Set(disks.flatMap((d) => d.chain.map((l) => l.path))));
  }

  /** Keeps only the domains read last (the others are gone). */
  retain(domains: ReadonlySet<string>): void {
    for (const name of this.#paths.keys()) if (!domains.has(name)) this.#paths.delete(name);
  }

  /**
   * The other domains that use a layer the operation writes into (a commit's base, a pull's
   * active layer, a reused copy destination) or deletes.
   */
  sharedWith(domain: string, disk: Disk, op: Operation, preview: Pick<ChainPreview, 'after' | 'deleted'>): SharedLayerUse[] {
    const written = new Set<string>();
    if (op.kind === 'commit') {
      const base = op.base === undefined ? disk.chain[disk.chain.length - 1] : disk.chain.find((l) => l.index === op.base);
      if (base) written.add(base.path);
    } else if (op.kind === 'pull' && disk.chain[0]) {
      written.add(disk.chain[0].path);
    } else if (op.kind === 'copy' && op.reuseExisting) {
      written.add(op.destination);
    }
    const deleted = new Set(preview.deleted.map((l) => l.path));
    const uses: SharedLayerUse[] = [];
    for (const [other, paths] of this.#paths) {
      if (other === domain) continue;
      const hitDeleted = [...deleted].filter((p) => paths.has(p));
      const hitWritten = [...written].filter((p) => paths.has(p) && !deleted.has(p));
      if (hitDeleted.length > 0) uses.push({ domain: other, paths: hitDeleted, effect: 'deleted' });
      if (hitWritten.length > 0) uses.push({ domain: other, paths: hitWritten, effect: 'written' });
    }
    return uses.sort((a, b) => a.domain.localeCompare(b.domain));
  }
}
