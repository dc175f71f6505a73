// The space guard's decisions, apart from libvirt and the file system so they can be tested on
// numbers: the limits on one file system, what to do at a given free space, and where to set the
// next block threshold on the growing layer.
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SpaceGuardSettings } from '../../../shared/space-guard.ts';
import { mountOf, readMounts } from './file-access.ts';

const MiB = 1024 * 1024;

export interface SpaceLimits {
  /** Below this much free space the guard throttles or aborts; 0: the guard is off. */
  stopBelowBytes: number;
  /** Below this it warns: twice the stop limit. */
  warnBelowBytes: number;
}

export interface SpaceFacts {
  mountPoint: string;
  /** What an unprivileged user may still write (statfs' f_bavail): QEMU does not run as root. */
  freeBytes: number;
  totalBytes: number;
}

/** The smaller of the byte and the percent limit of a file system of `totalBytes`. */
export function limitsFor(settings: SpaceGuardSettings, totalBytes: number): SpaceLimits {
  const stop = Math.max(0, Math.min(settings.minFreeBytes, Math.floor((totalBytes * settings.minFreePercent) / 100)));
  return { stopBelowBytes: stop, warnBelowBytes: 2 * stop };
}

/**
 * 'stop': throttle or abort now; 'hold': stay throttled; 'resume': a throttled job may go on
 * (free space back above the warning level, so it does not stop again at once); 'warn'; 'ok'.
 */
export type SpaceVerdict = 'ok' | 'warn' | 'stop' | 'hold' | 'resume';

export function judgeSpace(freeBytes: number, limits: SpaceLimits, throttled: boolean): SpaceVerdict {
  if (limits.stopBelowBytes === 0) return throttled ? 'resume' : 'ok';
  if (throttled) return freeBytes >= limits.warnBelowBytes ? 'resume' : 'hold';
  if (freeBytes < limits.stopBelowBytes) return 'stop';
  return freeBytes < limits.warnBelowBytes ? 'warn' : 'ok';
}

/**
 * The next block threshold for a layer whose file now ends at `currentBytes`: where it will have
 * used the room down to the warning level, then half of what is left above the stop limit each
 * time, so events come closer together as the file system fills. Null when there is no room left
 * to watch for (the guard acts on the free space itself).
 */
export function nextThreshold(currentBytes: number, freeBytes: number, limits: SpaceLimits): number | null {
  const room = freeBytes - limits.stopBelowBytes;
  if (room <= 0) return null;
  const step = freeBytes > limits.warnBelowBytes ? freeBytes - limits.warnBelowBytes : Math.floor(room / 2);
  return currentBytes + Math.max(MiB, step);
}

/** The free and total space of the file system that holds `path` (or would hold it, for a file not made yet). */
export function spaceOf(path: string): SpaceFacts | null {
  for (const at of [path, dirname(path)]) {
    try {
      const fs = statfsSync(at);
      return { mountPoint: mountOf(at, readMounts())?.mountPoint ?? '/', freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize };
    } catch {
      continue;
    }
  }
  return null;
}
