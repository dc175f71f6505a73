// The one chain reader: a domain's disks and backing chains from its live XML, with each layer's
// sizes when the caller shows them (they cost a stats call, and only for this domain).
import type { Disk, DomainDetail } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { log } from '../../log/logger.ts';
import { parseDomainXml } from './domain-xml.ts';
import { addSnapshots, type SnapshotReading } from './snapshots.ts';

/**
 * Reads `name`; `call` runs each libvirt call with the host's error wording. Sizes are extra: a
 * driver without stats still shows the chain.
 */
export async function readDomain(
  conn: LibvirtConnection,
  name: string,
  options: { sizes: boolean; snapshots?: SnapshotReading; shutOffChains?: (disks: Disk[]) => Promise<Disk[]> },
  call: <T>(action: string, fn: () => Promise<T>) => Promise<T>,
): Promise<DomainDetail> {
  const parsed = parseDomainXml(await call(`read the definition of ${name}`, () => conn.domainXml(name)));
  const state = await call(`read the state of ${name}`, () => conn.domainState(name));
  const disks =
    state === 'shutoff' && options.shutOffChains
      ? await options.shutOffChains(parsed.disks)
      : !options.sizes || state === 'shutoff'
        ? parsed.disks
        : await withSizes(conn, name, parsed.disks);
  return { name, uuid: parsed.uuid, state, disks: options.snapshots ? await addSnapshots(name, disks, options.snapshots) : disks };
}

async function withSizes(conn: LibvirtConnection, name: string, disks: Disk[]): Promise<Disk[]> {
  let stats: Awaited<ReturnType<LibvirtConnection['layerStats']>>;
  try {
    stats = await conn.layerStats(name);
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
