// The one chain reader: a domain's disks and backing chains from its live XML, with each layer's
// sizes when the caller shows them (they cost a stats call, and only for this domain).
import type { Disk, DomainDetail, DomainState, Layer } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { libvirtCode } from '../../libvirt/errors.ts';
import type { LayerStats } from '../../libvirt/types.ts';
import { log } from '../../log/logger.ts';
import type { KnownDomain } from './domain-model.ts';
import { parseDomainXml } from './domain-xml.ts';
import { madeBy, readSnapshots, type LayerSnapshots, type SnapshotReading } from './snapshots.ts';

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
 * Reads `name`, or takes what the host's model knows of it (`known`, and `stats` when it has
 * them); `call` runs each libvirt call with the host's error wording. Sizes are extra: a
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
  const offline = state === 'shutoff' && options.shutOffChains;
  const disks = offline ? await options.shutOffChains!(parsed.disks) : parsed.disks;
  const stats = offline || !options.sizes || state === 'shutoff' ? undefined : await layerStats(conn, name, model.stats ?? null);
  const snapshots = options.snapshots ? await readSnapshots(name, disks, options.snapshots) : null;
  return { name, uuid: parsed.uuid, state, disks: stats === undefined && !snapshots ? disks : decorate(disks, stats, snapshots) };
}

/**
 * Whether a domain job (a backup, a save; whoever started it) runs or is starting on `name`, asked
 * by a call that lists no block nodes. Reading layer sizes makes libvirt list QEMU's block nodes,
 * and QEMU 7.2 aborts when they are listed while a backup formats its target image; while a backup
 * starts, libvirt 9.0 answers this call with an error ("backup job data missing"), then reports an
 * unbounded backup job, so any answer but "none" counts as a job. A job begun after it is not seen.
 */
export async function domainJobRuns(conn: LibvirtConnection, name: string): Promise<boolean> {
  try {
    return (await conn.jobStats(name)).type !== 'none';
  } catch (err) {
    // A driver without domain jobs (libvirt's test driver) runs none.
    return libvirtCode(err) !== 'VIR_ERR_NO_SUPPORT';
  }
}

/** The domain's layer sizes (`known` when the caller has them); none while a domain job runs, undefined when they cannot be read. */
async function layerStats(conn: LibvirtConnection, name: string, known: LayerStats[] | null): Promise<LayerStats[] | undefined> {
  if (known) return known;
  if (await domainJobRuns(conn, name)) return [];
  try {
    return await conn.layerStats(name);
  } catch (err) {
    log.debug('no layer sizes: the chain is shown without them', { domain: name, err });
    return undefined;
  }
}

/**
 * The layers with their sizes (unless `stats` is undefined: not asked for, or unreadable) and
 * snapshots set, in one copy: a full model of a large host copies every layer once.
 */
function decorate(disks: readonly Disk[], stats: LayerStats[] | undefined, snapshots: LayerSnapshots | null): Disk[] {
  const byTarget = new Map<string, LayerStats[]>();
  for (const s of stats ?? []) {
    const list = byTarget.get(s.target);
    if (list) list.push(s);
    else byTarget.set(s.target, [s]);
  }
  return disks.map((d) => {
    const targetStats = byTarget.get(d.target) ?? [];
    return {
      ...d,
      chain: d.chain.map((layer): Layer => {
        const s = stats === undefined ? undefined : targetStats.find((x) => x.index === layer.index || x.path === layer.path);
        const sizes = s ? { capacity: s.capacity, allocation: s.allocation, physical: s.physical } : null;
        const snapshot = snapshots && snapshots.named.length > 0 ? madeBy(d.target, layer.path, snapshots.named) : null;
        const inside = snapshots?.internal?.get(layer.path);
        // A layer as the XML reader made it, with both added: one object literal (the common case).
        if (stats !== undefined && snapshots && !inside && plain(layer)) return { index: layer.index, type: layer.type, path: layer.path, format: layer.format, sizes, snapshot };
        const out = copyLayer(layer);
        if (stats !== undefined) out.sizes = sizes;
        if (snapshots) out.snapshot = snapshot;
        if (inside) out.internalSnapshots = inside;
        return out;
      }),
    };
  });
}

const plain = (layer: Layer): boolean => layer.sizes === undefined && layer.snapshot === undefined && layer.internalSnapshots === undefined;

// Field by field: spreading each of 100,000 layers (a 1,000-domain host's full model) took
// ten times longer than this.
function copyLayer(layer: Layer): Layer {
  const out: Layer = { index: layer.index, type: layer.type, path: layer.path, format: layer.format };
  if (layer.sizes !== undefined) out.sizes = layer.sizes;
  if (layer.snapshot !== undefined) out.snapshot = layer.snapshot;
  if (layer.internalSnapshots !== undefined) out.internalSnapshots = layer.internalSnapshots;
  return out;
}
