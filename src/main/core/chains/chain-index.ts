// Which domains of a host use which image files, so a preview can name the other guests whose
// disks read a layer an operation writes into or deletes (a base shared by several domains).
// Fed by the chain reads the host makes anyway (the discovery of running domains after each
// lifecycle event, and every domain read), so a preview costs the same on any size of host.
import type { Operation } from '../../../shared/contract.ts';
import type { ChainPreview, Disk, SharedLayerUse } from '../../../shared/model.ts';

export class ChainIndex {
  /** Domain name → the paths of every layer of every disk it has. */
  readonly #paths = new Map<string, ReadonlySet<string>>();
  /** Path → the domains using it: a preview looks up its few layers, never walks every domain. */
  readonly #users = new Map<string, Set<string>>();

  set(domain: string, disks: readonly Disk[]): void {
    this.#forget(domain);
    const paths = new Set(disks.flatMap((d) => d.chain.map((l) => l.path)));
    this.#paths.set(domain, paths);
    for (const path of paths) {
      let users = this.#users.get(path);
      if (!users) this.#users.set(path, (users = new Set()));
      users.add(domain);
    }
  }

  /** Keeps only the domains read last (the others are gone). */
  retain(domains: ReadonlySet<string>): void {
    for (const name of [...this.#paths.keys()]) if (!domains.has(name)) this.#forget(name);
  }

  #forget(domain: string): void {
    for (const path of this.#paths.get(domain) ?? []) {
      const users = this.#users.get(path);
      users?.delete(domain);
      if (users?.size === 0) this.#users.delete(path);
    }
    this.#paths.delete(domain);
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
    return this.othersUsing(domain, written, preview.deleted.map((l) => l.path));
  }

  /** The other domains that use a path in `written` (its content changes under them) or `deleted`. */
  othersUsing(domain: string, writtenPaths: Iterable<string>, deletedPaths: Iterable<string>): SharedLayerUse[] {
    const written = new Set(writtenPaths);
    const deleted = new Set(deletedPaths);
    // Per other domain, in the order the operation names its layers: what it deletes, what it writes.
    const hits = new Map<string, { deleted: string[]; written: string[] }>();
    const collect = (paths: Iterable<string>, effect: 'deleted' | 'written'): void => {
      for (const path of paths) {
        for (const other of this.#users.get(path) ?? []) {
          if (other === domain) continue;
          let hit = hits.get(other);
          if (!hit) hits.set(other, (hit = { deleted: [], written: [] }));
          hit[effect].push(path);
        }
      }
    };
    collect(deleted, 'deleted');
    collect([...written].filter((p) => !deleted.has(p)), 'written');
    const uses: SharedLayerUse[] = [];
    for (const [other, hit] of hits) {
      if (hit.deleted.length > 0) uses.push({ domain: other, paths: hit.deleted, effect: 'deleted' });
      if (hit.written.length > 0) uses.push({ domain: other, paths: hit.written, effect: 'written' });
    }
    return uses.sort((a, b) => a.domain.localeCompare(b.domain));
  }
}
