// The one chain reader: a domain's disks and backing chains from its live XML, with each layer's
// sizes when the caller shows them (they cost a stats call, and only for this domain).
import type { Disk, DomainDetail, DomainState } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import type { LayerStats } from '../../libvirt/types.ts';
import { log } from '../../log/logger.ts';
import type { KnownDomain } from './domain-model.ts';
import { parseDomainXml } from './domain-xml.ts';
import { addSnapshots, type SnapshotReading } from './snapshots.ts';

/** The domain's XML and, unless the caller knows it, its state. */
export async function readKnown(
  conn: LibvirtConnection,
  name: string,
  state: DomainState | null,
  call: <T>(action: string, fn: () => Promise<T>) => Promise<T>,
): Promise<KnownDomain> {
  const parsed = parseDomainXml(await call(`read the definition of ${name}`, () => conn.domainXml(name)));
  return { parsed, state: state ?? (await call(`read the state of ${name}`, () => conn.domainState(name))) };
}

/**
 * Reads `name`, or takes what the host's model knows of it (`known`, and `stats` from a bulk
 * reading); `call` runs each libvirt call with the host's error wording. Sizes are extra: a
 * driver without stats still shows the chain.
 */
export async function readDomain(
  conn: LibvirtConnection,
  name: string,
  options: { sizes: boolean; snapshots?: SnapshotReading; shutOffChains?: (disks: Disk[]) => Promise<Disk[]> },
  call: <T>(action: string, fn: () => Promise<T>) => Promise<T>,
  model: { known?: KnownDomain; stats?: LayerStats[] | null } = {},
): Promise<DomainDetail> {
  const { parsed, state } = model.known ?? (await readKnown(conn, name, null, call));
  const disks =
    state === 'shutoff' && options.shutOffChains
      ? await options.shutOffChains(parsed.disks)
      : !options.sizes || state === 'shutoff'
        ? parsed.disks
        : await withSizes(conn, name, parsed.disks, model.stats ?? null);
  return { name, uuid: parsed.uuid, state, disks: options.snapshots ? await addSnapshots(name, disks, options.snapshots) : disks };
}

async function withSizes(conn: LibvirtConnection, name: string, disks: Disk[], known: LayerStats[] | null): Promise<Disk[]> {
  let stats: LayerStats[];
  try {
    stats = known ?? (await conn.layerStats(name));
  } catch (err) {
    log.debug('no layer sizes: the chain is shown without them', { domain: name, err });
    return disks;
  }
  return disks.map((d) => ({
    ...d,
    chain: d.chain.map((layer) => {
      const s = stats.find((x) => x.target === d.target && (x.index === layer.index || x.path === layer.path));
      return { ...layer, sizes: s ? { capacity: s.capacity, allocation: s.allocation, physical: s.physical } : null };
    }),
  }));
}
