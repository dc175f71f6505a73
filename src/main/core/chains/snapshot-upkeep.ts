// Keeps libvirt's snapshot list true to the chain: once layers left a disk's chain (a completed
// pull, commit or copy, a revert), the named snapshots whose records name them are deleted from
// libvirt's metadata, as the operation's preview said (see snapshotFates). Images are never
// touched here: deleting an external snapshot's files through libvirt 9.0 is what loses data.
import type { SnapshotFate } from '../../../shared/layers.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { log } from '../../log/logger.ts';
import { readSnapshotLayers, snapshotFates, type SnapshotSource } from './snapshots.ts';

/** What the host's model knows of which domains have named snapshots (DomainModel.maySnapshot). */
export interface SnapshotHint {
  maySnapshot(domain: string, read: () => Promise<ReadonlySet<string>>): Promise<boolean>;
}

/**
 * libvirt's snapshot metadata of a domain. With the model's `hint` (what a domain view shows),
 * a domain that one listing of the host found without snapshots costs no call of its own;
 * without it (what an operation acts on) every reading asks libvirt.
 */
export function snapshotSource(conn: LibvirtConnection, hint?: SnapshotHint): SnapshotSource {
  return {
    snapshotXmls: async (domain) => {
      if (hint && !(await hint.maySnapshot(domain, () => conn.domainsWithSnapshots()))) return [];
      return (await conn.listAllSnapshots(domain, { secure: true })).map((s) => s.xml);
    },
  };
}

/**
 * Deletes the metadata of `domain`'s named snapshots that the change from `before` to `after`
 * (disk `target`'s chain, active first) left naming images outside it; returns each snapshot's
 * fate, with a failure to delete said in its reason.
 */
export async function forgetRemovedSnapshots(conn: LibvirtConnection, domain: string, target: string, before: readonly string[], after: readonly string[]): Promise<SnapshotFate[]> {
  const kept = new Set(after);
  const removed = new Set(before.filter((p) => !kept.has(p)));
  if (removed.size === 0) return [];
  const named = await readSnapshotLayers(snapshotSource(conn), domain);
  const fates = snapshotFates(target, before, named, removed);
  const done = new Set<string>();
  const out: SnapshotFate[] = [];
  for (const fate of fates) {
    if (fate.fate !== 'metadata-deleted' || done.has(fate.name)) {
      out.push(fate);
      continue;
    }
    done.add(fate.name);
    try {
      await conn.snapshotDelete(domain, fate.name, { metadataOnly: true });
      log.info("deleted a named snapshot's metadata: its layers left the chain", { domain, disk: target, snapshot: fate.name });
      out.push(fate);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log.warn("a named snapshot's metadata could not be deleted; virsh snapshot-list still names images outside the chain", { domain, disk: target, snapshot: fate.name, err });
      out.push({ ...fate, fate: 'kept', reason: `libvirt refused to delete its record (${message}): delete it with virsh snapshot-delete ${domain} ${fate.name} --metadata.` });
    }
  }
  return out;
}
