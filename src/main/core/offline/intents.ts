// Intent records: before each step of an offline job, a small JSON file in `<data folder>/offline/`
// says what is about to happen (domain, disk, operation, the chain before, the daemon's pid and
// socket). A Strata that crashed finds them at its next start, so no job is ever half-done and
// forgotten: its daemon is followed to the end, or its images are checked and the chain named.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { JobType } from '../../../shared/model.ts';
import { readJsonFile, removeJson, writeJson } from '../storage/json-file.ts';

/** The steps, in order. A record names the last step that began. */
export const intentSteps = ['planned', 'target-created', 'daemon-started', 'job-started', 'data-complete', 'definition-written'] as const;
export type IntentStep = (typeof intentSteps)[number];

const operationSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('pull'), image: z.string(), base: z.string().nullable() }),
  z.object({ kind: z.literal('commit'), image: z.string(), top: z.string(), base: z.string() }),
  z.object({ kind: z.literal('copy'), image: z.string(), destination: z.string(), format: z.enum(['qcow2', 'raw']), shallow: z.boolean() }),
  z.object({
    kind: z.literal('backup'),
    image: z.string(),
    destination: z.string(),
    bitmap: z.string().nullable(),
    incremental: z.object({ bitmap: z.string(), layers: z.number().int().positive(), backing: z.string() }).nullable(),
  }),
]);

/** The job model's type of the job (older records have none: the operation says it). */
const jobTypeSchema = z.enum(['pull', 'copy', 'commit', 'active-commit', 'backup', 'restore', 'unknown'] as const satisfies readonly JobType[]);

export const intentSchema = z.object({
  version: z.literal(1),
  jobId: z.string().regex(/^[A-Za-z0-9_.-]+$/),
  /** The libvirt URI of the host whose domain this is: the Strata host of that URI follows it. */
  hostUri: z.string().optional(),
  /** The id of the job in Strata's job model, when Strata's job runner started it. */
  modelJobId: z.string().optional(),
  /** The job's type in the job model: a backup's copy is a backup, and is recovered as one. */
  type: jobTypeSchema.optional(),
  /** A copy the domain does not switch to (afterReady 'keep'): the definition stays as it was. */
  keepDefinition: z.boolean().optional(),
  domain: z.string(),
  disk: z.string(),
  operation: operationSchema,
  /** The chain before the job, active layer first, as the headers recorded it. */
  chainBefore: z.array(z.object({ path: z.string(), format: z.string(), backingRecorded: z.string().nullable() })),
  /** The chain the job leads to, active layer first. */
  chainAfter: z.array(z.object({ path: z.string(), format: z.string() })),
  /** A file the job creates (a copy's destination); null when it creates none. */
  target: z.string().nullable(),
  step: z.enum(intentSteps),
  daemon: z.object({ pid: z.number().int().positive(), socket: z.string(), runtimeDir: z.string() }).nullable(),
  /** The job's id inside the daemon (QMP `job-id`). */
  qmpJobId: z.string(),
  bandwidthBytesPerSec: z.number().int().nonnegative(),
  startedAt: z.string(),
  updatedAt: z.string(),
});
export type OfflineIntent = z.infer<typeof intentSchema>;

export class IntentStore {
  /** `dataDir` is Strata's data folder; records live in its `offline/` folder. */
  constructor(readonly dataDir: string) {}

  get dir(): string {
    return join(this.dataDir, 'offline');
  }

  pathOf(jobId: string): string {
    return join(this.dir, `${jobId}.json`);
  }

  /** Written beside and renamed over, so a crash leaves the previous record or this one, whole. */
  async write(intent: OfflineIntent): Promise<void> {
    await writeJson(this.pathOf(intent.jobId), { ...intent, updatedAt: new Date().toISOString() });
  }

  async remove(jobId: string): Promise<void> {
    await removeJson(this.pathOf(jobId));
  }

  /** Every record left; an unreadable one is moved aside by readJsonFile and skipped. */
  async list(): Promise<OfflineIntent[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: OfflineIntent[] = [];
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const { value } = await readJsonFile(join(this.dir, name), intentSchema);
      if (value) out.push(value);
    }
    return out;
  }
}
