// Why a copy failed, when Strata can see it: libvirt's job events carry no reason, and QEMU's
// (ENOSPC on the mirror's target) reaches only the daemon's log. A destination on this machine
// whose filesystem is left with less than a cluster's worth of room ran out of space.
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';

/** Below this, no qcow2 cluster (64 KiB by default) and its metadata fit any more. */
const fullBelowBytes = 1024 * 1024;

/** The reason a copy to local `destination` failed, if its filesystem is full; null otherwise. */
export function fullDestinationReason(destination: string): string | null {
  const folder = dirname(destination);
  let free: number;
  try {
    const fs = statfsSync(folder);
    free = fs.bavail * fs.bsize;
  } catch {
    // The folder is gone or unreadable: nothing can be said about its room.
    return null;
  }
  if (free >= fullBelowBytes) return null;
  return (
    `the destination's filesystem is full (${free} bytes left in ${folder}). ` +
    `The partial copy ${destination} is left in place: Strata offers to remove it; free space before copying again`
  );
}
