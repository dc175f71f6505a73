// Finished jobs, kept across restarts of the app in its data folder, newest last.
import { join } from 'node:path';
import { z } from 'zod';
import { finishedPhases, type AfterReady, type Job, type JobPhase, type JobType } from '../../../shared/model.ts';
import { spaceGuardNoteSchema } from '../../../shared/space-guard.ts';
import { log } from '../../log/logger.ts';
import { readJsonFile, writeJson } from './json-file.ts';

const keep = 1000;

const count = z.number().finite();
const epochMs = z.number().int().min(0);

// Records over the model's unions: the type check fails until a value added to the model is
// added here, so a file written by this version always reads back.
const jobTypes: Record<JobType, true> = { pull: true, copy: true, commit: true, 'active-commit': true, backup: true, restore: true, unknown: true };
const afterReadyValues: Record<AfterReady, true> = { pivot: true, keep: true, wait: true };
const origins: Record<Job['origin'], true> = { strata: true, external: true };

function oneOf<T extends string>(values: Record<T, true>, what: string): z.ZodType<T> {
  return z.custom<T>((v) => typeof v === 'string' && Object.hasOwn(values, v), `${what} must be one of ${Object.keys(values).join(', ')}`);
}

// Typed as the model so a field added to Job fails the type check until the schema knows it.
const jobSchema: z.ZodType<Job> = z.object({
  id: z.string().min(1),
  hostId: z.string().min(1),
  domain: z.string().min(1),
  disk: z.string().min(1),
  type: oneOf(jobTypes, 'type'),
  // Only jobs that have ended are kept.
  phase: z.custom<JobPhase>((v) => finishedPhases.includes(v as JobPhase), `phase must be one of ${finishedPhases.join(', ')}`),
  cur: count,
  end: count,
  progress: z.number().min(0).max(1).nullable(),
  bandwidthBytesPerSec: count.min(0),
  requestedBandwidthBytesPerSec: count.min(0),
  afterReady: oneOf(afterReadyValues, 'afterReady').nullable(),
  rateBytesPerSec: count.nullable(),
  etaSeconds: count.nullable(),
  startedAt: epochMs,
  updatedAt: epochMs,
  endedAt: epochMs.nullable(),
  origin: oneOf(origins, 'origin'),
  outcome: z.string().nullable(),
  // Files written before leftovers were recorded have none.
  leftover: z
    .object({
      path: z.string().min(1),
      partial: z.boolean(),
      bytes: count.min(0).nullable(),
      fileId: z.string().min(1).nullable(),
      status: z.enum(['left', 'removed', 'reused']),
    })
    .nullable()
    .default(null),
  spaceGuard: spaceGuardNoteSchema.nullable().optional(),
  engine: z.enum(['libvirt', 'qemu-storage-daemon', 'qemu-img']).optional(),
});

const fileSchema = z.object({ version: z.literal(1), jobs: z.array(jobSchema) });

export class JobHistory {
  readonly path: string;
  #jobs: Job[] = [];
  #saving: Promise<void> = Promise.resolve();
  /** The write queued behind the one under way, if any. */
  #waiting: Promise<void> | null = null;

  constructor(dataDir: string) {
    this.path = join(dataDir, 'history.json');
  }

  /** Reads the history; returns a warning for the user when the file was invalid and moved aside. */
  async load(): Promise<{ warning: string | null }> {
    const { value, warning } = await readJsonFile(this.path, fileSchema);
    this.#jobs = value?.jobs ?? [];
    return { warning };
  }

  list(): Job[] {
    return this.#jobs.map((j) => ({ ...j }));
  }

  add(job: Job): Promise<void> {
    this.#jobs.push({ ...job });
    if (this.#jobs.length > keep) this.#jobs.splice(0, this.#jobs.length - keep);
    return this.#save(job.id);
  }

  /** The recorded job with this id, if the history still holds it. */
  find(id: string): Job | undefined {
    const job = this.#jobs.find((j) => j.id === id);
    return job ? { ...job } : undefined;
  }

  /** Replaces the record of an ended job (its leftover removed or reused); unknown ids are ignored. */
  replace(job: Job): Promise<void> {
    const at = this.#jobs.findIndex((j) => j.id === job.id);
    if (at < 0) return this.#saving;
    this.#jobs[at] = { ...job };
    return this.#save(job.id);
  }

  #save(jobId: string): Promise<void> {
    // Writes are chained so two jobs ending together never interleave their files, and at most one
    // waits behind the one under way: it writes the jobs as they are when it begins, so it carries
    // every job that ended meanwhile (under churn, one whole file per ended job was mostly garbage).
    // A failed write loses nothing yet: the job stays in memory and the next write carries it.
    if (this.#waiting !== null) return this.#waiting;
    const next = this.#saving
      .then(() => {
        this.#waiting = null;
        return writeJson(this.path, { version: 1, jobs: this.#jobs });
      })
      .catch((err: unknown) => log.error('cannot save the job history; the next finished job tries again', { path: this.path, job: jobId, err }));
    this.#waiting = next;
    this.#saving = next;
    return next;
  }

  /** Resolves once every write begun so far has ended (the app waits for it before exiting). */
  flush(): Promise<void> {
    return this.#saving;
  }

  export(now = new Date()): { fileName: string; json: string } {
    const stamp = now.toISOString().replace(/[:.]/g, '-');
    return { fileName: `strata-history-${stamp}.json`, json: JSON.stringify({ exportedAt: now.toISOString(), jobs: this.#jobs }, null, 2) };
  }
}
