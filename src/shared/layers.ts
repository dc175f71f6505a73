// The commands that change a disk's chain without a block job: a snapshot (with libvirt's name and
// description when the user gives one), a revert to an older layer, and growing the disk. Spread
// into the contract (contract.ts); their replies extend its Results.
import { z } from 'zod';
import type { Disk, Layer, SharedLayerUse } from './model.ts';
import { diskTarget, domainName, hostId } from './fields.ts';

const diskRef = { hostId, domain: domainName, disk: diskTarget };

function absolutePath(field: string) {
  return z
    .string({ error: `${field} must be an absolute path on the host` })
    .min(2, `${field} must be an absolute path on the host`)
    .max(4096, `${field} is too long`)
    .refine((p) => p.startsWith('/'), `${field} must be an absolute path, starting with /`)
    .refine((p) => !p.split('/').includes('..'), `${field} must not contain .. segments`)
    .refine((p) => !/[\u0000-\u001f]/.test(p), `${field} cannot contain control characters`)
    .refine((p) => !p.endsWith('/'), `${field} must name a file, not a folder`);
}

// libvirt takes nearly any snapshot name, but virsh and virt-manager show it on one line and a
// '/' would reach the file libvirt stores the metadata in.
const snapshotName = z
  .string({ error: 'name must be a string: the snapshot name libvirt lists' })
  .min(1, 'name must not be empty (leave it out for a layer without libvirt metadata)')
  .max(200, 'name is at most 200 characters')
  .refine((s) => s.trim() === s, 'name cannot begin or end with spaces')
  .refine((s) => !s.includes('/') && !/[\u0000-\u001f\u007f]/.test(s), 'name cannot contain "/" or control characters');
const snapshotDescription = z
  .string({ error: 'description must be a string' })
  .max(2000, 'description is at most 2,000 characters')
  .refine((s) => !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(s), 'description cannot contain control characters other than line breaks and tabs');

const revertConfirmation = z.enum(['drop-layers', 'delete-files', 'shared-layers'], {
  error: "confirm holds 'drop-layers', 'delete-files' or 'shared-layers'",
});

const revertTarget = { ...diskRef, layer: absolutePath('layer') };

export const layerRequestSchemas = {
  'disk.snapshot': z
    .object({ ...diskRef, destination: absolutePath('destination').optional(), name: snapshotName.optional(), description: snapshotDescription.optional() })
    .strict()
    .refine((p) => p.description === undefined || p.name !== undefined, { message: 'a description needs a name: libvirt keeps it with the named snapshot', path: ['description'] }),
  'revert.preview': z.object({ ...revertTarget, deleteFiles: z.boolean().default(false) }).strict(),
  'disk.revert': z
    .object({ ...revertTarget, deleteFiles: z.boolean().default(false), confirm: z.array(revertConfirmation).max(3).default([]) })
    .strict(),
  'disk.grow': z
    .object({
      ...diskRef,
      bytes: z
        .number({ error: 'bytes must be a number: the new size of the disk in bytes' })
        .int('bytes must be a whole number of bytes')
        .min(1, 'bytes must be positive')
        .max(Number.MAX_SAFE_INTEGER, 'bytes is too large')
        // qcow2 sizes are whole sectors; QEMU refuses anything else.
        .refine((b) => b % 512 === 0, 'bytes must be a multiple of 512 (whole sectors)'),
    })
    .strict(),
} as const;

/**
 * What happens to one libvirt snapshot when an operation removes layers: 'kept' (its layers stay
 * in the chain), 'metadata-deleted' (libvirt's record is deleted, metadata only: it would name
 * images no longer in the chain; no image is touched).
 */
export interface SnapshotFate {
  name: string;
  disk: string;
  /** The layer the snapshot made. */
  layer: string;
  fate: 'kept' | 'metadata-deleted';
  /** One sentence: why. */
  reason: string;
}

export interface RevertPreview {
  summary: string;
  /** The layer that becomes the active one. */
  target: Layer;
  /** The chain afterwards, active first. */
  after: Layer[];
  /** The layers above it, whose writes are discarded. */
  discarded: Layer[];
  /** Files deleted (only with deleteFiles); otherwise the discarded files stay where they are. */
  deleted: string[];
  /** Bytes the discarded layers hold on the host (their files' allocated size); null when unknown. */
  bytesDiscarded: number | null;
  namedSnapshots: SnapshotFate[];
  /** Other domains whose chains use a discarded layer or the reverted-to layer. */
  sharedWith: SharedLayerUse[];
  needs: ('drop-layers' | 'delete-files' | 'shared-layers')[];
  warnings: string[];
}

export interface RevertResult {
  disk: Disk;
  /** The discarded layers' files left in place. */
  kept: string[];
  deleted: string[];
  namedSnapshots: SnapshotFate[];
}

export interface GrowResult {
  disk: Disk;
  previousBytes: number;
  bytes: number;
  /** What grew the image: libvirt's virDomainBlockResize (running) or qemu-img resize (shut off). */
  through: 'virDomainBlockResize' | 'qemu-img resize';
  /** What the user does next, inside the guest. */
  nextStep: string;
}

export interface LayerResults {
  'disk.snapshot': Disk;
  'revert.preview': RevertPreview;
  'disk.revert': RevertResult;
  'disk.grow': GrowResult;
}
