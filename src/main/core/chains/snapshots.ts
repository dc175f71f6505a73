// libvirt's named snapshots and qcow2's internal ones, set on the layers they belong to. An
// external disk-only snapshot (virsh snapshot-create-as --disk-only, virt-manager's external
// snapshots) made the overlay its <disks><disk><source file> names: that layer carries the name.
// Internal snapshots live inside one image and are read from its header (`qemu-img info`).
import { stat } from 'node:fs/promises';
import type { SnapshotFate } from '../../../shared/layers.ts';
import type { Disk, InternalSnapshot, NamedSnapshot } from '../../../shared/model.ts';
import { escapeXml } from '../../libvirt/xml.ts';
import { readImageChain } from '../offline/image-tool.ts';
import { child, children, parseXml } from './xml-tree.ts';

/**
 * Where libvirt's snapshot metadata comes from: virDomainListAllSnapshots then
 * virDomainSnapshotGetXMLDesc of each, which LibvirtConnection.listAllSnapshots reads in one call.
 */
export interface SnapshotSource {
  snapshotXmls(domain: string): Promise<string[]>;
}

/** One disk of one libvirt snapshot: the overlay it created for that disk. */
export interface SnapshotLayer extends NamedSnapshot {
  /** The disk's target, e.g. 'vda'. */
  disk: string;
  /** The image the snapshot created (the new active layer at the time). */
  file: string;
  /** The image that was active before (the overlay's backing file), when the embedded <domain> says. */
  previous: string | null;
}

/** The layers a libvirt snapshot's XML (virDomainSnapshotGetXMLDesc) says it created. */
export function parseSnapshotXml(xml: string): SnapshotLayer[] {
  const root = parseXml(xml);
  if (root.name !== 'domainsnapshot') return [];
  const name = child(root, 'name')?.text.trim() ?? '';
  const creationTime = Number(child(root, 'creationTime')?.text.trim() ?? 0);
  const description = child(root, 'description')?.text ?? '';
  const domainDisks = children(child(child(root, 'domain'), 'devices'), 'disk');
  const previousOf = (target: string): string | null => {
    const d = domainDisks.find((x) => child(x, 'target')?.attrs.get('dev') === target);
    return child(d, 'source')?.attrs.get('file') ?? null;
  };
  const out: SnapshotLayer[] = [];
  for (const disk of children(child(root, 'disks'), 'disk')) {
    if (disk.attrs.get('snapshot') !== 'external') continue;
    const target = disk.attrs.get('name');
    const file = child(disk, 'source')?.attrs.get('file');
    if (!target || !file) continue;
    out.push({ name, creationTime: Number.isFinite(creationTime) ? creationTime : 0, description, disk: target, file, previous: previousOf(target) });
  }
  return out;
}

/** Every snapshot layer of a domain; a snapshot whose XML cannot be read is skipped, not fatal. */
export async function readSnapshotLayers(source: SnapshotSource, domain: string): Promise<SnapshotLayer[]> {
  const out: SnapshotLayer[] = [];
  for (const xml of await source.snapshotXmls(domain)) {
    try {
      out.push(...parseSnapshotXml(xml));
    } catch {
      continue;
    }
  }
  return out;
}

// A qemu-img run costs milliseconds and a domain view may show hundreds of layers: an image is
// read again only when its modification time or size changed.
const internalCache = new Map<string, { mtimeMs: number; size: number; snapshots: InternalSnapshot[] }>();
const INTERNAL_CACHE_MAX = 4096;
// Layers a commit or pull deleted are never asked for again: without pruning, the cache kept one
// entry per image the host ever had, and the memory soak saw the heap grow with every job.
const PRUNE_EVERY = 128;
let insertedSincePrune = 0;

async function pruneDeletedImages(): Promise<void> {
  await Promise.all(
    [...internalCache.keys()].map(async (path) => {
      try {
        await stat(path);
      } catch {
        internalCache.delete(path);
      }
    }),
  );
}

/** Internal snapshots of each image, by path; an image that cannot be read is left out. */
export async function readInternalSnapshots(paths: readonly string[]): Promise<Map<string, InternalSnapshot[]>> {
  const out = new Map<string, InternalSnapshot[]>();
  for (const path of paths) {
    try {
      const { mtimeMs, size } = await stat(path);
      const cached = internalCache.get(path);
      if (cached && cached.mtimeMs === mtimeMs && cached.size === size) {
        out.set(path, cached.snapshots);
        continue;
      }
      // -U: a running domain's QEMU holds the image; the snapshot table is read as it is on disk.
      const [layer] = await readImageChain(path, { forceShare: true, single: true });
      if (!layer) continue;
      const snapshots = layer.internalSnapshots.map(({ id, name, dateSec, vmStateBytes }) => ({ id, name, dateSec, vmStateBytes }));
      if (internalCache.size >= INTERNAL_CACHE_MAX) internalCache.clear();
      internalCache.set(path, { mtimeMs, size, snapshots });
      if (++insertedSincePrune >= PRUNE_EVERY) {
        insertedSincePrune = 0;
        await pruneDeletedImages();
      }
      out.set(path, snapshots);
    } catch {
      continue;
    }
  }
  return out;
}

/** Both kinds of snapshot of a domain's layers, as read for one domain view. */
export interface LayerSnapshots {
  named: readonly SnapshotLayer[];
  /** By image path; null when the images were not read (remote hosts). */
  internal: ReadonlyMap<string, InternalSnapshot[]> | null;
}

/** The libvirt snapshot that made layer `path` of disk `target`, as a layer shows it; null when none did. */
export function madeBy(target: string, path: string, named: readonly SnapshotLayer[]): NamedSnapshot | null {
  for (const s of named) if (s.disk === target && s.file === path) return { name: s.name, creationTime: s.creationTime, description: s.description };
  return null;
}

/**
 * The disks with `snapshot` set on each layer a libvirt snapshot created (null on the others),
 * and `internalSnapshots` on each layer read (only when given: images are on this machine).
 */
export function withSnapshots(disks: readonly Disk[], named: readonly SnapshotLayer[], internal: ReadonlyMap<string, InternalSnapshot[]> | null): Disk[] {
  return disks.map((d) => ({
    ...d,
    chain: d.chain.map((layer) => {
      const snapshot = madeBy(d.target, layer.path, named);
      const inside = internal?.get(layer.path);
      return inside ? { ...layer, snapshot, internalSnapshots: inside } : { ...layer, snapshot };
    }),
  }));
}

/** Named snapshots whose layer is not in the disk's chain any more (what `virsh snapshot-list` would show wrongly). */
export function strandedSnapshots(disks: readonly Disk[], named: readonly SnapshotLayer[]): SnapshotLayer[] {
  return named.filter((s) => {
    const disk = disks.find((d) => d.target === s.disk);
    return !disk || !disk.chain.some((l) => l.path === s.file);
  });
}

export interface SnapshotReading {
  /** libvirt's snapshot metadata; null while the host has no way to list it. */
  source: SnapshotSource | null;
  /** The images are on this machine (a local URI), so their headers can be read. */
  localImages: boolean;
}

/**
 * Both kinds of snapshot of `disks`' layers, for domain.get; null when the host can read neither.
 * Either reading may fail (a snapshot removed meanwhile, an unreadable image): the chain is then
 * shown without that part.
 */
export async function readSnapshots(domain: string, disks: readonly Disk[], reading: SnapshotReading): Promise<LayerSnapshots | null> {
  if (!reading.source && !reading.localImages) return null;
  const named = reading.source ? await readSnapshotLayers(reading.source, domain).catch(() => []) : [];
  const files = (): string[] => disks.flatMap((d) => d.chain.filter((l) => l.type === 'file' && (l.format === 'qcow2' || l.format === null)).map((l) => l.path));
  const internal = reading.localImages ? await readInternalSnapshots(files()) : null;
  return { named, internal };
}

/**
 * What happens to each named snapshot of disk `target` whose layer is in `chain` when the paths in
 * `removed` leave that chain. A snapshot's record names two images of the disk: the layer it made
 * and, in its saved definition, the one active before. Once either is gone its record describes a
 * chain that no longer exists, and libvirt 9.0 can neither revert nor delete it properly: Strata
 * deletes the record alone (metadata only), the images staying as the operation leaves them.
 */
export function snapshotFates(target: string, chain: readonly string[], named: readonly SnapshotLayer[], removed: ReadonlySet<string>): SnapshotFate[] {
  const inChain = new Set(chain);
  const out: SnapshotFate[] = [];
  for (const s of named) {
    if (s.disk !== target || !inChain.has(s.file)) continue;
    const otherDisks = named.filter((o) => o.name === s.name && o.disk !== target).map((o) => o.disk);
    const also = otherDisks.length > 0 ? ` Its record also covers ${otherDisks.join(', ')}, which keep their layers.` : '';
    if (removed.has(s.file)) {
      out.push({ name: s.name, disk: target, layer: s.file, fate: 'metadata-deleted', reason: `The layer it made, ${s.file}, leaves the chain: libvirt's record of it is deleted (metadata only, no image is touched).${also}` });
    } else if (s.previous !== null && removed.has(s.previous)) {
      out.push({
        name: s.name,
        disk: target,
        layer: s.file,
        fate: 'metadata-deleted',
        reason: `Its record names ${s.previous} as the disk before it, which leaves the chain: libvirt's record of it is deleted (metadata only, no image is touched); its layer stays.${also}`,
      });
    } else {
      out.push({ name: s.name, disk: target, layer: s.file, fate: 'kept', reason: 'Its layers stay in the chain: libvirt keeps it as it is.' });
    }
  }
  return out;
}

/**
 * A disk-only external snapshot of one disk with libvirt metadata (virsh snapshot-list and
 * virt-manager show it by `name`); the other disks are left out of it.
 */
export function namedSnapshotXml(target: string, destination: string, otherDisks: readonly string[], name: string, description: string | undefined): string {
  const others = otherDisks.map((t) => `<disk name='${escapeXml(t)}' snapshot='no'/>`).join('');
  return (
    `<domainsnapshot><name>${escapeXml(name)}</name>` +
    (description ? `<description>${escapeXml(description)}</description>` : '') +
    `<disks><disk name='${escapeXml(target)}' snapshot='external' type='file'><driver type='qcow2'/><source file='${escapeXml(destination)}'/></disk>${others}</disks></domainsnapshot>`
  );
}
