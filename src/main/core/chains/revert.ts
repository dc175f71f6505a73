// Revert to a layer of a shut-off domain's disk: the chosen layer becomes the active one again,
// the writes held by the layers above it are discarded. Strata does it itself, because libvirt
// 9.0 cannot revert external snapshots: the chain is read from the image headers (as libvirt
// reads it at start), only the inactive definition's disk source changes (every other byte kept,
// see offline/domain-definition.ts), the named snapshots of discarded layers lose their metadata,
// and the discarded files stay unless their deletion is confirmed too.
import { stat, unlink } from 'node:fs/promises';
import { StrataError } from '../../../shared/errors.ts';
import type { RevertPreview, RevertResult, SnapshotFate } from '../../../shared/layers.ts';
import type { Layer, SharedLayerUse } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { toStrataError } from '../../libvirt/errors.ts';
import { log } from '../../log/logger.ts';
import { definedSource, DefinitionError, rewriteDiskChain } from '../offline/domain-definition.ts';
import { readImageChain, type ImageLayer } from '../offline/image-tool.ts';
import { forgetRemovedSnapshots, snapshotSource } from './snapshot-upkeep.ts';
import { readSnapshotLayers, snapshotFates } from './snapshots.ts';

export interface RevertContext {
  conn: LibvirtConnection;
  /** The images are on this machine (a local URI). */
  local: boolean;
  /** A block job or offline job holds the disk now. */
  busy: boolean;
  /** Other domains that use these paths: `written` ones change under them, `deleted` ones go. */
  sharedWith(written: readonly string[], deleted: readonly string[]): SharedLayerUse[];
}

interface Plan {
  preview: RevertPreview;
  xml: string;
  chain: ImageLayer[];
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

function toLayer(l: ImageLayer): Layer {
  return { index: null, type: 'file', path: l.path, format: l.format, sizes: null };
}

/** libvirt ≥ 9.9 reverts external snapshots itself, on hosts whose capabilities say <externalSnapshot/>. */
export async function libvirtRevertsExternal(conn: LibvirtConnection): Promise<boolean> {
  try {
    const [major = 0, minor = 0] = (await conn.versions()).libvirt.split('.').map(Number);
    if (major * 1000 + minor < 9009) return false;
    return /<externalSnapshot\s*\/>/.test(await conn.getCapabilities());
  } catch {
    return false;
  }
}

async function allocated(path: string): Promise<number | null> {
  try {
    return (await stat(path)).blocks * 512;
  } catch {
    return null;
  }
}

async function plan(ctx: RevertContext, domain: string, target: string, layerPath: string, deleteFiles: boolean): Promise<Plan> {
  const state = await ctx.conn.domainState(domain);
  if (state !== 'shutoff') {
    const libvirtCan = await libvirtRevertsExternal(ctx.conn);
    throw new StrataError('conflict', `${domain} is ${state}: Strata reverts a disk only while its domain is shut off, since QEMU writes into the active layer while it runs`, {
      hint: libvirtCan
        ? "This host's libvirt reverts external snapshots itself: use virsh snapshot-revert on the named snapshot, or shut the domain down and revert here."
        : 'Shut the domain down, then revert.',
    });
  }
  if (!ctx.local) {
    throw new StrataError('conflict', `the images of ${domain} are not on this machine: a revert reads and rewrites them here`, {
      hint: 'Revert from a Strata running on that host (a local qemu:/// URI).',
    });
  }
  if (ctx.busy) throw new StrataError('conflict', `${domain}/${target} has a job running: revert it afterwards`);
  const xml = await ctx.conn.domainXml(domain, { inactive: true, secure: true });
  let source: { path: string | null };
  try {
    source = definedSource(xml, target);
  } catch (err) {
    throw new StrataError('not-found', err instanceof DefinitionError ? err.message : `${domain} has no disk ${target}`);
  }
  if (!source.path) throw new StrataError('conflict', `${domain}/${target} is not a file disk: Strata reverts file chains only`);
  let chain: ImageLayer[];
  try {
    chain = await readImageChain(source.path);
  } catch (err) {
    throw new StrataError('conflict', `the chain of ${domain}/${target} cannot be read: ${err instanceof Error ? err.message : String(err)}`, {
      hint: 'Another process (a job, a running domain) may hold its images; try again once it has ended.',
    });
  }
  const position = chain.findIndex((l) => l.path === layerPath);
  if (position < 0) {
    throw new StrataError('invalid-request', `${layerPath} is not a layer of ${domain}/${target}`, { hint: `Its layers are ${chain.map((l) => l.path).join(', ')}.` });
  }
  if (position === 0) throw new StrataError('conflict', `${layerPath} is already the active layer of ${target}: there is nothing to revert`);
  const discarded = chain.slice(0, position);
  const after = chain.slice(position);
  const reverted = after[0]!;
  const sizes = await Promise.all(discarded.map((l) => allocated(l.path)));
  const bytesDiscarded = sizes.some((s) => s === null) ? null : sizes.reduce<number>((a, b) => a + (b ?? 0), 0);
  const named = await readSnapshotLayers(snapshotSource(ctx.conn), domain).catch(() => []);
  const namedSnapshots = snapshotFates(
    target,
    chain.map((l) => l.path),
    named,
    new Set(discarded.map((l) => l.path)),
  );
  const deletedPaths = deleteFiles ? discarded.map((l) => l.path) : [];
  // Whoever reads the reverted-to layer sees it change once the guest writes to it again; whoever
  // reads a discarded layer rests on that same layer.
  const sharedWith = ctx.sharedWith([reverted.path, ...(deleteFiles ? [] : discarded.map((l) => l.path))], deletedPaths);
  const needs: RevertPreview['needs'] = ['drop-layers'];
  if (deleteFiles) needs.push('delete-files');
  if (sharedWith.length > 0) needs.push('shared-layers');
  const warnings = [
    `${reverted.path} becomes writable again: once the guest writes to it, the discarded layers no longer form a usable image, even where their files are kept.`,
  ];
  if (reverted.internalSnapshots.length > 0) warnings.push(`${reverted.path} holds internal snapshots (${reverted.internalSnapshots.map((s) => s.name).join(', ')}); they stay in it.`);
  const preview: RevertPreview = {
    summary: `Make ${reverted.path} the active layer of ${target}: the writes held by ${plural(discarded.length, 'layer')} above it are discarded${deleteFiles ? ' and their files deleted' : '; their files stay where they are'}.`,
    target: toLayer(reverted),
    after: after.map(toLayer),
    discarded: discarded.map(toLayer),
    deleted: deletedPaths,
    bytesDiscarded,
    namedSnapshots,
    sharedWith,
    needs,
    warnings,
  };
  return { preview, xml, chain };
}

export async function previewRevert(ctx: RevertContext, domain: string, target: string, layerPath: string, deleteFiles: boolean): Promise<RevertPreview> {
  return (await plan(ctx, domain, target, layerPath, deleteFiles)).preview;
}

const confirmWords: Record<RevertPreview['needs'][number], (p: RevertPreview) => string> = {
  'drop-layers': (p) => `the writes in ${p.discarded.map((l) => l.path).join(', ')} are discarded`,
  'delete-files': (p) => `the files ${p.deleted.join(', ')} are deleted`,
  'shared-layers': (p) => `other domains use these layers (${p.sharedWith.map((s) => `${s.domain}: ${s.paths.join(', ')}`).join('; ')})`,
};

/** Reverts, once every confirmation the preview needs is given; the definition is written before anything is deleted. */
export async function revertToLayer(
  ctx: RevertContext,
  domain: string,
  target: string,
  layerPath: string,
  deleteFiles: boolean,
  confirm: readonly string[],
): Promise<Omit<RevertResult, 'disk'>> {
  const { preview, xml, chain } = await plan(ctx, domain, target, layerPath, deleteFiles);
  const missing = preview.needs.filter((n) => !confirm.includes(n));
  if (missing.length > 0) {
    throw new StrataError('conflict', `Not reverted: this would lose data unless confirmed — ${missing.map((m) => confirmWords[m](preview)).join('; ')}.`, {
      hint: `Preview the revert, then send it again with confirm: ${JSON.stringify(missing)}.`,
    });
  }
  const after = preview.after.map((l) => ({ path: l.path, format: l.format ?? 'raw' }));
  let rewritten: string;
  try {
    rewritten = rewriteDiskChain(xml, target, after);
  } catch (err) {
    throw new StrataError('conflict', err instanceof Error ? err.message : String(err));
  }
  try {
    await ctx.conn.defineXML(rewritten);
  } catch (err) {
    throw toStrataError(err, `Could not write ${domain}'s definition`);
  }
  log.info('reverted a disk to an older layer', { domain, disk: target, layer: layerPath, discarded: preview.discarded.length });
  let namedSnapshots: SnapshotFate[];
  try {
    namedSnapshots = await forgetRemovedSnapshots(
      ctx.conn,
      domain,
      target,
      chain.map((l) => l.path),
      after.map((l) => l.path),
    );
  } catch (err) {
    log.warn("the named snapshots of the discarded layers could not be read after a revert; libvirt's list may name them still", { domain, disk: target, err });
    namedSnapshots = preview.namedSnapshots.map((f) => (f.fate === 'kept' ? f : { ...f, fate: 'kept', reason: `Its record could not be checked after the revert: delete it with virsh snapshot-delete ${domain} ${f.name} --metadata.` }));
  }
  const deleted: string[] = [];
  const kept: string[] = [];
  for (const l of preview.discarded) {
    if (!deleteFiles) {
      kept.push(l.path);
      continue;
    }
    try {
      await unlink(l.path);
      deleted.push(l.path);
    } catch (err) {
      log.warn('a discarded layer could not be deleted; it stays', { domain, disk: target, path: l.path, err });
      kept.push(l.path);
    }
  }
  return { kept, deleted, namedSnapshots };
}
