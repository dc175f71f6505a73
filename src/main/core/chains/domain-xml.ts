// Reads a domain's live XML into Strata's model: each disk with its backing chain, active layer
// first, as libvirt reports it (nested <backingStore> elements, an empty one ending the chain).
import { XMLParser } from 'fast-xml-parser';
import type { Disk, Layer, LayerType } from '../../../shared/model.ts';

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  allowBooleanAttributes: true,
  parseAttributeValue: false,
  parseTagValue: false,
  isArray: (name) => name === 'disk' || name === 'host',
});

const layerTypes: readonly LayerType[] = ['file', 'block', 'network', 'volume', 'dir', 'nvme', 'vhostuser'];
const devices: readonly Disk['device'][] = ['disk', 'cdrom', 'floppy', 'lun'];

function node(v: unknown): Node | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Node) : null;
}

function attr(n: Node | null, name: string): string | null {
  const v = n?.[`@${name}`];
  return typeof v === 'string' ? v : null;
}

function list(v: unknown): Node[] {
  return Array.isArray(v) ? v.map(node).filter((n): n is Node => n !== null) : [];
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
      const host = list(source['host'])[0] ?? null;
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

function backingChain(first: unknown): Layer[] {
  const layers: Layer[] = [];
  let store = node(first);
  // A chain longer than this is malformed XML, not a real disk; stop rather than loop on it.
  while (store && layers.length < 1000) {
    const source = node(store['source']);
    const type = layerType(attr(store, 'type'));
    const path = sourcePath(type, source);
    if (path === null) break;
    layers.push({ index: indexOf(store, source), type, path, format: attr(node(store['format']), 'type') });
    store = node(store['backingStore']);
  }
  return layers;
}

function parseDisk(d: Node): Disk | null {
  const target = attr(node(d['target']), 'dev');
  if (!target) return null;
  const type = layerType(attr(d, 'type'));
  const source = node(d['source']);
  const path = sourcePath(type, source);
  const deviceAttr = attr(d, 'device') ?? 'disk';
  const chain: Layer[] =
    path === null
      ? []
      : [
          { index: indexOf(source), type, path, format: attr(node(d['driver']), 'type') },
          ...backingChain(d['backingStore']),
        ];
  return {
    target,
    device: devices.find((x) => x === deviceAttr) ?? 'disk',
    bus: attr(node(d['target']), 'bus'),
    readOnly: 'readonly' in d,
    shareable: 'shareable' in d,
    chain,
  };
}

/** A copy or active commit in progress on a disk, as the live XML shows it. */
export interface Mirror {
  job: string | null;
  ready: boolean;
}

export interface ParsedDomain {
  name: string;
  uuid: string;
  disks: Disk[];
  /** By disk target: disks with a <mirror>, i.e. a copy or active commit under way. */
  mirrors: Map<string, Mirror>;
}

export function parseDomainXml(xml: string): ParsedDomain {
  const root = node(node(parser.parse(xml))?.['domain']);
  if (!root) throw new Error('not a libvirt domain XML document: it has no <domain> element');
  const name = root['name'];
  const uuid = root['uuid'];
  const diskNodes = list(node(root['devices'])?.['disk']);
  const disks = diskNodes.map(parseDisk).filter((d): d is Disk => d !== null);
  const mirrors = new Map<string, Mirror>();
  for (const d of diskNodes) {
    const mirror = node(d['mirror']);
    const target = attr(node(d['target']), 'dev');
    if (mirror && target) mirrors.set(target, { job: attr(mirror, 'job'), ready: attr(mirror, 'ready') === 'yes' });
  }
  return { name: typeof name === 'string' ? name : '', uuid: typeof uuid === 'string' ? uuid : '', disks, mirrors };
}
