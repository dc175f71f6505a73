// A shut-off domain's chains as QEMU will open them: libvirt's inactive XML names only the active
// image (libvirt reads the rest from the image headers when the domain starts), so the layers
// below come from the headers here too (`qemu-img info --backing-chain`). Layers are numbered by
// their place in the chain (0 the active layer), which is how offline operations name them.
import { stat } from 'node:fs/promises';
import type { Disk, Layer, LayerSizes } from '../../../shared/model.ts';
import { log } from '../../log/logger.ts';
import { readImageChain } from './image-tool.ts';

async function sizesOf(path: string, capacity: number): Promise<LayerSizes | null> {
  try {
    const st = await stat(path);
    return { capacity, allocation: st.blocks * 512, physical: st.size };
  } catch {
    return null;
  }
}

async function headerChain(disk: Disk): Promise<Layer[]> {
  const active = disk.chain[0]!;
  // -U: a running offline job's daemon holds the images; their headers are read as they are.
  const images = await readImageChain(active.path, { forceShare: true });
  return Promise.all(
    images.map(async (image, i) => {
      const known = disk.chain.find((l) => l.path === image.path);
      return {
        ...known,
        index: i,
        type: 'file' as const,
        path: image.path,
        format: image.format,
        sizes: await sizesOf(image.path, image.virtualSize),
      };
    }),
  );
}

/**
 * The disks of a shut-off domain on this machine with their whole chains. A definition that
 * spells its chain out (`<backingStore>`) is kept as written, numbered; an image that cannot be
 * read keeps what libvirt said, and the chain view shows that much.
 */
export async function withImageChains(domain: string, disks: readonly Disk[]): Promise<Disk[]> {
  return Promise.all(
    disks.map(async (disk) => {
      const active = disk.chain[0];
      if (!active || active.type !== 'file') return disk;
      if (disk.chain.length > 1) return { ...disk, chain: disk.chain.map((l, i) => ({ ...l, index: i })) };
      try {
        return { ...disk, chain: await headerChain(disk) };
      } catch (err) {
        log.debug('the image headers of a shut-off disk cannot be read; its chain is what libvirt says', { domain, disk: disk.target, err });
        return { ...disk, chain: [{ ...active, index: 0 }] };
      }
    }),
  );
}
