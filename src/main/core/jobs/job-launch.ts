// Turns a previewed operation into the libvirt call that starts it. Layers are always named
// explicitly (vda[N]), so libvirt does exactly what the preview showed.
import type { JobOperation } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { Disk, JobType, Layer } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { layerAt } from '../chains/preview.ts';

function layerName(disk: Disk, layer: Layer): string {
  if (layer.index === null) {
    throw new StrataError('conflict', `${disk.target}'s layers have no index: the domain must be running for this operation`);
  }
  return `${disk.target}[${layer.index}]`;
}

/** Starts the job; resolves with the type libvirt will report for it. */
export async function launchJob(
  conn: LibvirtConnection,
  domain: string,
  disk: Disk,
  op: JobOperation,
  bandwidthBytesPerSec: number,
): Promise<JobType> {
  switch (op.kind) {
    case 'pull': {
      if (op.base === undefined) {
        await conn.blockPull(domain, disk.target, bandwidthBytesPerSec);
      } else {
        await conn.blockRebase(domain, disk.target, layerName(disk, layerAt(disk, op.base, 'base').layer), bandwidthBytesPerSec);
      }
      return 'pull';
    }
    case 'commit': {
      const chain = disk.chain;
      const top = op.top === undefined ? chain[0]! : layerAt(disk, op.top, 'top').layer;
      const base = op.base === undefined ? chain[chain.length - 1]! : layerAt(disk, op.base, 'base').layer;
      const active = top === chain[0];
      await conn.blockCommit(domain, disk.target, {
        base: layerName(disk, base),
        top: layerName(disk, top),
        active,
        deleteLayers: op.deleteLayers,
        bandwidthBytesPerSec,
      });
      return active ? 'active-commit' : 'commit';
    }
    case 'copy':
      await conn.blockCopy(domain, disk.target, { ...op, bandwidthBytesPerSec });
      return 'copy';
  }
}
