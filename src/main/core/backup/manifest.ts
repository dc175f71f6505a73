// The manifest of a backup set: what a set's folder holds, readable without Strata (plain JSON)
// and written so a crash never leaves half a file (a temporary file beside it, then a rename).
// A point counts only once its status says 'complete', and that is written last, after its
// images are in place: a backup that failed, was aborted, or was cut short by a crash never
// lists as good.
import { join } from 'node:path';
import { z } from 'zod';
import type { BackupPoint, BackupSetDisk } from '../../../shared/backup.ts';
import { localFiles, type BackupFiles } from './files.ts';

export const manifestName = 'manifest.json';
export const manifestFormat = 'strata-backup-set';

const fileName = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,200}$/, 'a file name inside the set');
const epochMs = z.number().int().min(0);
const bytes = z.number().int().min(0).nullable();

const imageSchema = z.object({
  disk: z.string().min(1),
  file: fileName,
  format: z.literal('qcow2'),
  backingFile: fileName.nullable(),
  bytes,
});

const pointSchema: z.ZodType<BackupPoint> = z.object({
  index: z.number().int().min(0),
  kind: z.enum(['full', 'incremental']),
  checkpoint: z.string().min(1),
  startedAt: epochMs,
  endedAt: epochMs.nullable(),
  status: z.enum(['running', 'complete', 'failed', 'cancelled']),
  reason: z.string().nullable(),
  dataBytes: bytes,
  images: z.array(imageSchema),
});

const diskSchema: z.ZodType<BackupSetDisk> = z.object({ target: z.string().min(1), virtualBytes: bytes, sourcePath: z.string().nullable() });

export const manifestSchema = z.object({
  format: z.literal(manifestFormat),
  version: z.literal(1),
  strataVersion: z.string(),
  hostUri: z.string(),
  domain: z.object({ name: z.string().min(1), uuid: z.string().nullable() }),
  createdAt: epochMs,
  disks: z.array(diskSchema).min(1),
  points: z.array(pointSchema),
});

export type Manifest = z.output<typeof manifestSchema>;

/** Reads a set's manifest; throws with the reason when it is missing or not a manifest. */
export async function readManifest(folder: string, files: BackupFiles = localFiles): Promise<Manifest> {
  const text = await files.readText(join(folder, manifestName));
  const parsed = manifestSchema.safeParse(JSON.parse(text));
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new Error(`${manifestName} is not a Strata backup manifest (${issue?.path.join('.') || 'file'}: ${issue?.message ?? 'does not match'})`);
}

/** Writes the manifest whole or not at all. */
export async function writeManifest(folder: string, manifest: Manifest, files: BackupFiles = localFiles): Promise<void> {
  await files.writeTextAtomic(join(folder, manifestName), `${JSON.stringify(manifest, null, 2)}\n`);
}
