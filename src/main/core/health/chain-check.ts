// The chain check: every layer of a disk as qemu-img (info, check; read-only, -U while the domain
// runs) and the file system see it, with findings in plain words. On a remote host the images are
// not here: only what libvirt reports is shown. The latest answer for each file is kept, keyed by
// the file's identity and last change, for previews to reuse (see knownProblems).
import type { Disk, DomainDetail, Layer } from '../../../shared/model.ts';
import type { ChainCheck, Finding, HostCapabilities, LayerCheck } from '../../../shared/health.ts';
import { StrataError } from '../../../shared/errors.ts';
import { fileAccess, fileStamp, mountFacts, readMounts } from './file-access.ts';
import { chainFindings, fileFindings, finding, imageFindings, type LayerFacts } from './findings.ts';
import { imageCheck, imageInfo, type CheckResult, type ImageInfo } from './qemu-img.ts';

export interface CheckContext {
  hostId: string;
  hostLabel: string;
  /** The host's files are on this machine. */
  local: boolean;
  capabilities: HostCapabilities;
}

/** Two qemu-img at a time: the check must not starve the host's running guests of CPU. */
const concurrency = 2;

async function eachLimited<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const nameOf = (disk: Disk, layer: Layer): string => (layer.index === null ? layer.path : `${disk.target}[${layer.index}] ${layer.path}`);
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err)).replace(/\.$/, '');

/** The latest check's problems by path, valid while the file's stamp is unchanged. */
const known = new Map<string, { stamp: string; findings: Finding[] }>();
const knownLimit = 5000;

/** Errors and warnings the latest check found in `path`, if the file has not changed since. */
export function knownProblems(path: string): Finding[] {
  const entry = known.get(path);
  if (!entry || entry.stamp !== fileStamp(path)) return [];
  return entry.findings;
}

function remember(path: string, stamp: string | null, findings: Finding[]): void {
  if (stamp === null) return;
  if (known.size >= knownLimit) known.delete(known.keys().next().value as string);
  known.set(path, { stamp, findings: findings.filter((f) => f.severity !== 'info') });
}

async function localLayer(disk: Disk, layer: Layer, position: number, live: boolean, ctx: CheckContext, mounts: ReturnType<typeof readMounts>): Promise<LayerCheck> {
  const stamp = fileStamp(layer.path);
  let info: ImageInfo | null = null;
  let infoError: string | null = null;
  let check: CheckResult | null = null;
  let checkError: string | null = null;
  try {
    info = await imageInfo(layer.path, layer.format, live);
  } catch (err) {
    if (err instanceof StrataError && err.kind === 'unavailable') throw err;
    infoError = message(err);
  }
  if (info && info.format !== 'raw') {
    try {
      check = await imageCheck(layer.path, info.format, live);
    } catch (err) {
      if (err instanceof StrataError && err.kind === 'unavailable' && /not installed/.test(err.message)) throw err;
      checkError = message(err);
    }
  }
  const user = ctx.capabilities.qemuUser;
  const facts: LayerFacts = {
    path: layer.path,
    name: nameOf(disk, layer),
    position,
    chainLength: disk.chain.length,
    libvirtBacking: disk.chain[position + 1]?.path ?? null,
    live,
    info,
    infoError,
    check,
    checkError,
    access: fileAccess(layer.path, user),
    mount: mountFacts(layer.path, mounts),
    qemuUser: user,
    security: ctx.capabilities.security,
  };
  const findings = [...imageFindings(facts), ...fileFindings(facts)];
  remember(layer.path, stamp, findings);
  return {
    index: layer.index,
    path: layer.path,
    format: info?.format ?? layer.format,
    virtualBytes: info?.virtualBytes ?? layer.sizes?.capacity ?? null,
    allocatedBytes: info?.allocatedBytes ?? null,
    backingFile: info?.backingFile ?? null,
    backingFormat: info?.backingFormat ?? null,
    snapshots: info?.snapshots ?? [],
    bitmaps: info?.bitmaps ?? [],
    corruptions: check?.corruptions ?? null,
    leaks: check?.leaks ?? null,
    access: facts.access,
    mount: facts.mount,
    findings,
  };
}

// What libvirt alone tells of a layer on another machine: its format and sizes.
function remoteLayer(disk: Disk, layer: Layer, position: number): LayerCheck {
  const findings: Finding[] = [];
  if (layer.format === null && layer.type === 'file') {
    findings.push(finding('warning', 'format-unknown', `libvirt does not record the format of ${nameOf(disk, layer)}.`, "Give the layer's format in the domain's XML."));
  }
  return {
    index: layer.index,
    path: layer.path,
    format: layer.format,
    virtualBytes: layer.sizes?.capacity ?? null,
    allocatedBytes: layer.sizes?.physical ?? null,
    backingFile: disk.chain[position + 1]?.path ?? null,
    backingFormat: disk.chain[position + 1]?.format ?? null,
    snapshots: [],
    bitmaps: [],
    corruptions: null,
    leaks: null,
    access: null,
    mount: null,
    findings,
  };
}

/** Checks every layer of `target` on the domain `detail` describes. */
export async function checkChain(detail: DomainDetail, target: string, ctx: CheckContext): Promise<ChainCheck> {
  const started = Date.now();
  const disk = detail.disks.find((d) => d.target === target);
  if (!disk) {
    throw new StrataError('not-found', `${detail.name} has no disk '${target}'`, { hint: `Its disks are: ${detail.disks.map((d) => d.target).join(', ') || 'none'}.` });
  }
  const live = detail.state === 'running' || detail.state === 'paused';
  const mounts = readMounts();
  const layers = await eachLimited(disk.chain, concurrency, (layer, i) =>
    ctx.local && layer.type === 'file' ? localLayer(disk, layer, i, live, ctx, mounts) : Promise.resolve(remoteLayer(disk, layer, i)),
  );
  const findings = chainFindings({ live, local: ctx.local, hostLabel: ctx.hostLabel, security: ctx.capabilities.security, qemuUser: ctx.capabilities.qemuUser });
  if (ctx.capabilities.problem) findings.push(finding('info', 'capabilities-unknown', `${ctx.capabilities.problem}.`, null));
  return {
    hostId: ctx.hostId,
    domain: detail.name,
    disk: target,
    live,
    local: ctx.local,
    security: ctx.capabilities.security,
    qemuUser: ctx.capabilities.qemuUser,
    layers,
    findings,
    checkedAt: started,
    tookMs: Date.now() - started,
  };
}
