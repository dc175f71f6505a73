// Block jobs by disk. The store holds the latest job per `${hostId}/${domain}/${disk}`: the
// running one, or the last one that ended (its outcome stays on the disk card until the next job
// starts). Fed by the initial `jobs.list`, then by `job` events; the Job returned by pull,
// setSpeed and abort goes through the same newest-wins merge, so a late reply never rolls an
// event back. Never polled.
import type { StrataClient } from '../../../shared/bridge.ts';
import { isFinished, type Job } from '../../../shared/model.ts';
import { SvelteMap } from 'svelte/reactivity';
import { toShownError, type ShownError } from './errors.ts';

export interface DiskRef {
  hostId: string;
  domain: string;
  disk: string;
}

export function diskKey(ref: DiskRef): string {
  return `${ref.hostId}/${ref.domain}/${ref.disk}`;
}

/** Whether `incoming` is news compared with `current` (same disk). */
function isNewer(incoming: Job, current: Job | undefined): boolean {
  if (!current) return true;
  if (incoming.id !== current.id) return incoming.startedAt >= current.startedAt;
  // The same job: an end is final, otherwise the later update wins.
  if (isFinished(current) && !isFinished(incoming)) return false;
  if (isFinished(incoming) && !isFinished(current)) return true;
  return incoming.updatedAt >= current.updatedAt;
}

export class JobStore {
  readonly #client: StrataClient;
  readonly #jobs = new SvelteMap<string, Job>();
  /** Jobs that were running when Strata lost track of them (a reconnection found them gone). */
  readonly #lost = new SvelteMap<string, Job>();
  readonly #endListeners = new Set<(job: Job) => void>();

  loaded = $state(false);
  error = $state.raw<ShownError | null>(null);

  constructor(client: StrataClient) {
    this.#client = client;
  }

  /** The latest job on a disk, running or ended. */
  get(ref: DiskRef): Job | undefined {
    return this.#jobs.get(diskKey(ref));
  }

  /** A job that was running before a disconnection and had gone when Strata came back. */
  lost(ref: DiskRef): Job | undefined {
    return this.#lost.get(diskKey(ref));
  }

  /** Called once each time a job is seen to end. */
  onEnd(listener: (job: Job) => void): () => void {
    this.#endListeners.add(listener);
    return () => this.#endListeners.delete(listener);
  }

  /** Merges a job from an event or a reply; older news is ignored. */
  upsert(job: Job): void {
    const key = diskKey(job);
    const current = this.#jobs.get(key);
    if (!isNewer(job, current)) return;
    this.#jobs.set(key, job);
    this.#lost.delete(key);
    const ended = isFinished(job) && (!current || current.id !== job.id || !isFinished(current));
    if (ended) {
      for (const listener of this.#endListeners) {
        try {
          listener(job);
        } catch (error) {
          console.error('Strata: a job-end listener failed', error);
        }
      }
    }
  }

  /**
   * Reads the host's jobs. Running jobs this store knows of that the list no longer has ended
   * while Strata was not listening; they are set aside as "lost track of" rather than invented
   * an outcome.
   */
  async load(hostId: string): Promise<void> {
    try {
      const jobs = await this.#client.call('jobs.list', { hostId });
      const listed = new Set(jobs.map((job) => diskKey(job)));
      for (const [key, job] of this.#jobs) {
        if (job.hostId === hostId && !isFinished(job) && !listed.has(key)) {
          this.#jobs.delete(key);
          this.#lost.set(key, job);
        }
      }
      for (const job of jobs) this.upsert(job);
      this.error = null;
    } catch (error) {
      this.error = toShownError(error);
    } finally {
      this.loaded = true;
    }
  }

  async pull(ref: DiskRef, bandwidthBytesPerSec: number): Promise<Job> {
    const job = await this.#client.call('job.pull', { ...ref, bandwidthBytesPerSec });
    this.upsert(job);
    return job;
  }

  async setSpeed(ref: DiskRef, bandwidthBytesPerSec: number): Promise<Job> {
    const job = await this.#client.call('job.setSpeed', { ...ref, bandwidthBytesPerSec });
    this.upsert(job);
    return job;
  }

  async abort(ref: DiskRef): Promise<Job> {
    const job = await this.#client.call('job.abort', { ...ref });
    this.upsert(job);
    return job;
  }
}
