// Reads a domain's live XML into Strata's model: each disk with its backing chain, active layer
// first, as libvirt reports it (nested <backingStore> elements, an empty one ending the chain).
import type { Disk, Layer, LayerType } from '../../../shared/model.ts';
import { child, children, parseXml, type XmlElement } from './xml-tree.ts';

const layerTypes: readonly LayerType[] = ['file', 'block', 'network', 'volume', 'dir', 'nvme', 'vhostuser'];
const devices: readonly Disk['device'][] = ['disk', 'cdrom', 'floppy', 'lun'];

type Node = XmlElement;

function attr(n: Node | null, name: string): string | null {
  return n?.attrs.get(name) ?? null;
}

function sourcePath(type: LayerType, source: Node | null): string | null {
  if (!source) return null;
  switch (type) {
    case 'file':
      return attr(source, 'file');
    case 'block':
      return attr(source, 'dev');
    case 'dir':
      return attr(source, 'dir');
    case 'volume': {
      const pool = attr(source, 'pool');
      const volume = attr(source, 'volume');
      return pool && volume ? `${pool}/${volume}` : null;
    }
    case 'network': {
      const protocol = attr(source, 'protocol') ?? 'network';
      const name = attr(source, 'name') ?? '';
      const host = child(source, 'host');
      const hostName = attr(host, 'name') ?? attr(host, 'socket') ?? '';
      const port = attr(host, 'port');
      return `${protocol}://${hostName}${port ? `:${port}` : ''}/${name}`;
    }
    default:
      return attr(source, 'file') ?? attr(source, 'dev') ?? attr(source, 'name');
  }
}

function layerType(v: string | null): LayerType {
  return layerTypes.find((t) => t === v) ?? 'unknown';
}

function indexOf(...candidates: (Node | null)[]): number | null {
  for (const c of candidates) {
    const raw = attr(c, 'index');
    if (raw !== null && /^\d+$/.test(raw)) return Number(raw);
  }
  return null;
}

function backingChain(first: Node | null): Layer[] {
  const layers: Layer[] = [];
  let store = first;
  // A chain longer than this is malformed XML, not a real disk; stop rather than loop on it.
  while (store && layers.length < 1000) {
    const source = child(store, 'source');
    const type = layerType(attr(store, 'type'));
    const path = sourcePath(type, source);
    if (path === null) break;
    layers.push({ index: indexOf(store, source), type, path, format: attr(child(store, 'format'), 'type') });
    store = child(store, 'backingStore');
  }
  return layers;
}

function parseDisk(d: Node): Disk | null {
  const targetNode = child(d, 'target');
  const target = attr(targetNode, 'dev');
  if (!target) return null;
  const type = layerType(attr(d, 'type'));
  const source = child(d, 'source');
  const path = sourcePath(type, source);
  const deviceAttr = attr(d, 'device') ?? 'disk';
  const chain: Layer[] =
    path === null
      ? []
      : [
          { index: indexOf(source), type, path, format: attr(child(d, 'driver'), 'type') },
          ...backingChain(child(d, 'backingStore')),
        ];
  return {
    target,
    device: devices.find((x) => x === deviceAttr) ?? 'disk',
    bus: attr(targetNode, 'bus'),
    readOnly: child(d, 'readonly') !== null,
    shareable: child(d, 'shareable') !== null,
    chain,
  };
}

/** A copy or active commit in progress on a disk, as the live XML shows it. */
export interface Mirror {
  job: string | null;
  ready: boolean;
  /** The image being written (a copy's destination); null where the XML does not say. */
  path: string | null;
}

export interface ParsedDomain {
  name: string;
  uuid: string;
  disks: Disk[];
  /** By disk target: disks with a <mirror>, i.e. a copy or active commit under way. */
  mirrors: Map<string, Mirror>;
}

export function parseDomainXml(xml: string): ParsedDomain {
  const root = parseXml(xml);
  if (root.name !== 'domain') throw new Error('not a libvirt domain XML document: it has no <domain> element');
  const diskNodes = children(child(root, 'devices'), 'disk');
  const disks = diskNodes.map(parseDisk).filter((d): d is Disk => d !== null);
  const mirrors = new Map<string, Mirror>();
  for (const d of diskNodes) {
    const mirror = child(d, 'mirror');
    const target = attr(child(d, 'target'), 'dev');
    if (!mirror || !target) continue;
    // Older libvirt put the destination in a 'file' attribute; newer ones in a <source>.
    const path = sourcePath(layerType(attr(mirror, 'type') ?? 'file'), child(mirror, 'source')) ?? attr(mirror, 'file');
    mirrors.set(target, { job: attr(mirror, 'job'), ready: attr(mirror, 'ready') === 'yes', path });
  }
  return { name: child(root, 'name')?.text ?? '', uuid: child(root, 'uuid')?.text.trim() ?? '', disks, mirrors };
}
