// Which domains of a host use which image files, so a preview can name the other guests whose
// disks read a layer an operation writes into or deletes (a base shared by several domains).
// Fed by the chain reads the host makes anyway (its model of the domains, and every domain read),
// so a preview costs the same on any size of host.
import type { Operation } from '../../../shared/contract.ts';
import type { ChainPreview, Disk, SharedLayerUse } from '../../../shared/model.ts';

export class ChainIndex {
  /** Domain name → the paths of every layer of every disk it has. */
  readonly #paths = new Map<string, ReadonlySet<string>>();
  /** Path → the domains using it: a preview looks up its few layers, never walks every domain. */
  readonly #users = new Map<string, Set<string>>();
  /**
   * Chains read but not indexed yet (null: the domain is gone). A host reads every domain at
   * connect and after changes; indexing waits for the next preview, so a domain read ten times
   * is indexed once, and the connect does not pay for it.
   */
  readonly #unindexed = new Map<string, readonly Disk[] | null>();

  set(domain: string, disks: readonly Disk[]): void {
    this.#unindexed.set(domain, disks);
  }

  /** Keeps only the domains read last (the others are gone). */
  retain(domains: ReadonlySet<string>): void {
    for (const name of [...this.#paths.keys(), ...this.#unindexed.keys()]) if (!domains.has(name)) this.#unindexed.set(name, null);
  }

  #index(): void {
    for (const [domain, disks] of this.#unindexed) {
      this.#forget(domain);
      if (disks) this.#add(domain, disks);
    }
    this.#unindexed.clear();
  }

  #add(domain: string, disks: readonly Disk[]): void {
    const paths = new Set<string>();
    for (const d of disks) for (const l of d.chain) paths.add(l.path);
    this.#paths.set(domain, paths);
    for (const path of paths) {
      let users = this.#users.get(path);
      if (!users) this.#users.set(path, (users = new Set()));
      users.add(domain);
    }
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
    this.#index();
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
    this.#index();
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
