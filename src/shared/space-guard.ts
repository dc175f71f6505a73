// The space guard's part of the contract: the per-host limit below which a running job that grows
// a layer is throttled to a crawl or aborted, what the guard says on a job, and a guest QEMU
// paused on an I/O error (a full file system) with the command that resumes it once there is room.
import { z } from 'zod';
import type { HostInfo } from './model.ts';
import { domainName as domain, hostId } from './fields.ts';

const MiB = 1024 * 1024;

export type SpaceGuardAction = 'throttle' | 'abort';

/**
 * The free space a host's jobs must leave where they write: the smaller of `minFreeBytes` and
 * `minFreePercent` of the file system, so a large file system is not stopped with hundreds of
 * gigabytes left and a small one is not stopped before it has begun. The guard warns at twice it;
 * 0 in either turns it off.
 */
export interface SpaceGuardSettings {
  minFreeBytes: number;
  minFreePercent: number;
  /** What the guard does at the limit: slow the job to 1 byte/s (it can go on once space is freed), or abort it. */
  action: SpaceGuardAction;
}

/**
 * 256 MiB or 5 %: room for QEMU's own metadata (L2 and refcount tables) and the guest's writes
 * elsewhere on the file system in the second or two the guard takes to act at a few hundred MiB/s,
 * and no more than ext4's default reserve for root on a small file system.
 */
export const defaultSpaceGuard: SpaceGuardSettings = { minFreeBytes: 256 * MiB, minFreePercent: 5, action: 'throttle' };

/**
 * What the guard says about a running job:
 * 'watching': room enough; 'warning': below twice the limit; 'throttled': below the limit, the job
 * slowed to 1 byte/s until space is freed; 'aborted': below the limit, the job aborted;
 * 'resumed': space was freed after a throttle, the job's limit given back.
 */
export interface SpaceGuardNote {
  state: 'watching' | 'warning' | 'throttled' | 'aborted' | 'resumed';
  /** The file the job grows (a commit's base, a pull's active layer, a copy's destination). */
  target: string;
  /** libvirt's name of the layer whose block threshold is set (`vda[3]`); null where none is (a copy's destination). */
  thresholdDev: string | null;
  /** libvirt's block-threshold events received for this job, each followed by a new threshold further on. */
  thresholdEvents: number;
  mountPoint: string | null;
  freeBytes: number | null;
  /** The limit in force on this file system, and the warning level (twice it). */
  stopBelowBytes: number;
  warnBelowBytes: number;
  /** One plain sentence: what the guard saw and did. */
  message: string;
  /** What the user can do; null when nothing needs doing. */
  hint: string | null;
  /** The limit the job had before a throttle, given back once space is freed; null when not throttled. */
  restoreBandwidthBytesPerSec: number | null;
  /** Epoch ms. */
  at: number;
}

/** A guest QEMU paused because a write failed (libvirt's io-error-reason event), as Strata saw it. */
export interface GuestIoPause {
  hostId: string;
  domain: string;
  /** False once the guest runs again (resumed here or elsewhere). */
  paused: boolean;
  /** QEMU's reason: 'enospc' (no space left), 'eio', 'eperm', …; null when the event was not seen. */
  reason: string | null;
  /** The image whose write failed, and the disk it belongs to. */
  path: string | null;
  disk: string | null;
  mountPoint: string | null;
  freeBytes: number | null;
  /** The free space Resume needs there (the host's space-guard limit). */
  neededFreeBytes: number | null;
  /** Whether Resume may go ahead now (room above the limit, or nothing known against it). */
  canResume: boolean;
  message: string;
  /** Epoch ms of the event. */
  at: number;
}

export const spaceGuardNoteSchema = z.object({
  state: z.enum(['watching', 'warning', 'throttled', 'aborted', 'resumed']),
  target: z.string(),
  thresholdDev: z.string().nullable(),
  thresholdEvents: z.number().int().min(0),
  mountPoint: z.string().nullable(),
  freeBytes: z.number().nullable(),
  stopBelowBytes: z.number(),
  warnBelowBytes: z.number(),
  message: z.string(),
  hint: z.string().nullable(),
  restoreBandwidthBytesPerSec: z.number().nullable(),
  at: z.number(),
});

export const spaceGuardSettingsSchema = z
  .object({
    minFreeBytes: z
      .number({ error: 'minFreeBytes must be a number of bytes' })
      .int('minFreeBytes must be a whole number of bytes')
      .min(0, 'minFreeBytes cannot be negative (0 turns the guard off)')
      .max(Number.MAX_SAFE_INTEGER, 'minFreeBytes is too large'),
    minFreePercent: z.number({ error: 'minFreePercent must be a number' }).min(0, 'minFreePercent cannot be negative').max(50, 'minFreePercent is at most 50'),
    action: z.enum(['throttle', 'abort'], { error: "action must be 'throttle' or 'abort'" }),
  })
  .strict();

export const spaceGuardRequestSchemas = {
  'hosts.setSpaceGuard': z.object({ hostId, ...spaceGuardSettingsSchema.shape }).strict(),
  'domain.ioPause': z.object({ hostId, domain }).strict(),
  'domain.resume': z.object({ hostId, domain }).strict(),
} as const;

export interface SpaceGuardResults {
  /** The host with its new settings (saved with the host). */
  'hosts.setSpaceGuard': HostInfo;
  /** Why the guest is paused, if QEMU paused it on an I/O error Strata saw; null otherwise. */
  'domain.ioPause': GuestIoPause | null;
  /** Resumes a paused guest, refused while the file system its failed write went to is still below the limit. */
  'domain.resume': { resumed: string };
}
