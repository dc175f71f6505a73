// Growing a disk: the active layer's virtual size. A running domain's QEMU resizes it
// (virDomainBlockResize), so the guest sees the new size at once; a shut-off domain's image is
// resized by qemu-img here. libvirt 9.0 has no flag that forbids shrinking, so Strata refuses any
// size below the current one itself: a shrink cuts off whatever the guest keeps at the end.
import { StrataError } from '../../../shared/errors.ts';
import type { GrowResult } from '../../../shared/layers.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { toStrataError } from '../../libvirt/errors.ts';
import { log } from '../../log/logger.ts';
import { domainJobRuns } from '../chains/domain-reader.ts';
import { definedSource } from './domain-definition.ts';
import { readImageChain, runImageTool } from './image-tool.ts';

export interface GrowContext {
  conn: LibvirtConnection;
  /** The images are on this machine (a local URI). */
  local: boolean;
  /** A block job or offline job holds the disk now. */
  busy: boolean;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export function sizeWords(bytes: number): string {
  const unit = bytes >= GiB ? `${(bytes / GiB).toFixed(2).replace(/\.?0+$/, '')} GiB` : `${(bytes / MiB).toFixed(2).replace(/\.?0+$/, '')} MiB`;
  return `${bytes} bytes (${unit})`;
}

const NEXT_STEP =
  "The guest's partition and file system keep their size: grow them inside the guest (for example growpart /dev/vda 1, then resize2fs or xfs_growfs).";

async function runningSize(conn: LibvirtConnection, domain: string, target: string): Promise<number> {
  // Its size is read from block statistics, which QEMU 7.2 may abort over while a job starts.
  if (await domainJobRuns(conn, domain)) {
    throw new StrataError('conflict', `${domain} has a domain job running (a backup, perhaps another program's): grow ${target} after it ends`);
  }
  const stats = await conn.layerStats(domain);
  const mine = stats.filter((s) => s.target === target);
  // The active layer is the one with the lowest backing index (libvirt's stats list it first).
  const active = mine.find((s) => s.index === null || s.index === Math.min(...mine.map((m) => m.index ?? 0))) ?? mine[0];
  if (!active) throw new StrataError('not-found', `${domain} has no disk '${target}'`);
  return active.capacity;
}

/** Grows `target` of `domain` to `bytes`; refused when that is not larger than the disk is now. */
export async function growDisk(ctx: GrowContext, domain: string, target: string, bytes: number): Promise<Omit<GrowResult, 'disk'>> {
  if (ctx.busy) throw new StrataError('conflict', `${domain}/${target} has a job running: grow it afterwards`);
  const state = await ctx.conn.domainState(domain);
  const running = state === 'running' || state === 'paused';
  if (!running && state !== 'shutoff') {
    throw new StrataError('conflict', `${domain} is ${state}: a disk is grown while its domain runs (through libvirt) or is shut off (through qemu-img)`);
  }
  const refuseSmaller = (current: number): void => {
    if (bytes < current) {
      throw new StrataError('conflict', `${target} is ${sizeWords(current)} now; ${sizeWords(bytes)} would shrink it: Strata only grows disks`, {
        hint: 'Shrinking cuts off whatever the guest keeps at the end of the disk. Give a size larger than the current one.',
      });
    }
    if (bytes === current) throw new StrataError('conflict', `${target} is already ${sizeWords(current)}: give a larger size`);
  };
  if (running) {
    const current = await runningSize(ctx.conn, domain, target).catch((err: unknown) => {
      throw toStrataError(err, `Could not read the size of ${domain}/${target}`);
    });
    refuseSmaller(current);
    try {
      await ctx.conn.blockResize(domain, target, bytes);
    } catch (err) {
      throw toStrataError(err, `Could not grow ${domain}/${target}`);
    }
    log.info('grew a running disk', { domain, disk: target, from: current, to: bytes });
    return { previousBytes: current, bytes, through: 'virDomainBlockResize', nextStep: `The guest sees the new size now. ${NEXT_STEP}` };
  }
  if (!ctx.local) {
    throw new StrataError('conflict', `the images of ${domain} are not on this machine: a shut-off disk is grown with qemu-img here`, {
      hint: 'Start the domain to grow the disk through libvirt, or use a Strata running on that host.',
    });
  }
  const xml = await ctx.conn.domainXml(domain, { inactive: true, secure: true });
  const source = definedSource(xml, target);
  if (!source.path) throw new StrataError('conflict', `${domain}/${target} is not a file disk: Strata grows file images of shut-off domains only`);
  const [layer] = await readImageChain(source.path, { single: true }).catch((err: unknown) => {
    throw new StrataError('conflict', `${source.path} cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  });
  if (!layer) throw new StrataError('conflict', `${source.path} cannot be read`);
  refuseSmaller(layer.virtualSize);
  try {
    // qemu-img takes QEMU's image lock: a domain started meanwhile makes it fail, never both write.
    await runImageTool('qemu-img', ['resize', '-q', '-f', layer.format, layer.path, String(bytes)]);
  } catch (err) {
    throw new StrataError('conflict', `qemu-img could not grow ${layer.path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  log.info('grew a shut-off disk', { domain, disk: target, path: layer.path, from: layer.virtualSize, to: bytes });
  return { previousBytes: layer.virtualSize, bytes, through: 'qemu-img resize', nextStep: `The guest sees the new size at its next start. ${NEXT_STEP}` };
}
