// Every block job Strata sees, on every host: one JobEntry per job, whose own state changes as
// `job` events arrive (so one job's progress re-renders its own card only), and the history of
// ended jobs. Fed by `jobs.list` and `history.list` on start, then by events; replies to start,
// pivot, setSpeed and abort go through the same newest-wins merge, so a late reply never rolls an
// event back. What happened to a job (its end, its ready) is the event's own `transition`, told
// by the engine once: the store passes it on, it does not work it out again. Never polled.
import type { GrowResult, RevertPreview, RevertResult } from '../../../shared/layers.ts';
import type { StrataClient } from '../../../shared/bridge.ts';
import type { JobOperation, Operation, Params } from '../../../shared/contract.ts';
import { isFinished, type ChainPreview, type Disk, type Job, type JobEvent, type JobTransition } from '../../../shared/model.ts';
import { SvelteMap } from 'svelte/reactivity';
import { coalesced } from './coalesce.ts';
import { toShownError, type ShownError } from './errors.ts';

export interface DiskRef {
  hostId: string;
  domain: string;
  disk: string;
}

export function diskKey(ref: DiskRef): string {
  return `${ref.hostId}/${ref.domain}/${ref.disk}`;
}

/** One point of a job's rate chart. */
export interface RateSample {
  /** Seconds since the job started. */
  t: number;
  rate: number;
  /** The limit in force then, 0 meaning none. */
  limit: number;
}

/** Enough for a smooth line over any job's life; older points are thinned, never dropped whole. */
const maxSamples = 360;

/**
 * Where this job's chart is thinned: jobs started together would all thin on the same update,
 * and 100 charts redrawn from new arrays at once made frames of over 50 ms (measured in the
 * renderer benchmark); a spread of 64 samples, fixed per job, keeps them apart.
 */
function thinningPoint(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) | 0;
  return maxSamples - (Math.abs(h) % 64);
}

/** Whether `incoming` is news compared with `current` (same job). */
function isNewer(incoming: Job, current: Job): boolean {
  if (isFinished(current) && !isFinished(incoming)) return false;
  if (isFinished(incoming) && !isFinished(current)) return true;
  return incoming.updatedAt >= current.updatedAt;
}

export class JobEntry {
  job: Job;
  samples: RateSample[];
  /** What Strata asked for, when this page started the job (an outside job has none). */
  readonly operation: JobOperation | null;
  /** The disk's key and when the job was first seen: fixed for the job's life. */
  readonly id: string;
  readonly key: string;
  readonly hostId: string;
  readonly domain: string;
  readonly seenAt: number;
  // Lists and badges read these instead of `job`, so a progress event, which changes `job` but
  // neither of these, re-renders the job's own card and nothing else.
  finished: boolean;
  queued: boolean;
  readonly #thinAt: number;

  constructor(job: Job, operation: JobOperation | null) {
    this.#thinAt = thinningPoint(job.id);
    this.job = $state.raw(job);
    this.samples = $state.raw([]);
    this.finished = $state(isFinished(job));
    this.queued = $state(job.phase === 'queued');
    this.operation = operation;
    this.id = job.id;
    this.key = diskKey(job);
    this.hostId = job.hostId;
    this.domain = job.domain;
    this.seenAt = job.startedAt;
    this.#sample(job);
  }

  /** Whether `job` is newer than what the entry shows. */
  isNews(job: Job): boolean {
    return isNewer(job, this.job);
  }

  /** Takes the update if it is news; returns whether the job just ended. */
  update(job: Job): boolean {
    const current = this.job;
    if (!isNewer(job, current)) return false;
    this.job = job;
    this.finished = isFinished(job);
    this.queued = job.phase === 'queued';
    this.#sample(job);
    return isFinished(job) && !isFinished(current);
  }

  #sample(job: Job): void {
    if (job.rateBytesPerSec === null || isFinished(job)) return;
    const point = { t: (job.updatedAt - job.startedAt) / 1000, rate: job.rateBytesPerSec, limit: job.bandwidthBytesPerSec };
    const last = this.samples[this.samples.length - 1];
    if (last && point.t <= last.t) return;
    let next = [...this.samples, point];
    if (next.length > this.#thinAt) next = next.filter((_, i) => i % 2 === 0 || i === next.length - 1);
    this.samples = next;
  }
}

function byStart(a: JobEntry, b: JobEntry): number {
  return a.seenAt - b.seenAt;
}

export type StartOptions = Omit<Params<'job.start'>, 'hostId' | 'domain' | 'disk' | 'operation'>;

export class JobStore {
  readonly #client: StrataClient;
  /**
   * By job id: every job running or waiting, and the last ended one of each disk (its outcome is
   * shown until the next job there ends). A disk may have one running job and others queued.
   */
  readonly #entries = new SvelteMap<string, JobEntry>();
  /** Jobs that were running when Strata lost track of them (a reconnection found them gone). */
  readonly #lost = new SvelteMap<string, Job>();
  readonly #endListeners = new Set<(job: Job) => void>();
  readonly #changeListeners = new Set<(job: Job, transition: JobTransition) => void>();
  /** Operations this page started, until their job appears (the reply and the event race). */
  readonly #launched = new Map<string, JobOperation>();

  loaded = $state(false);
  error = $state.raw<ShownError | null>(null);
  /** Ended jobs, newest first; replaced whole on each read. */
  history = $state.raw<Job[]>([]);
  historyError = $state.raw<ShownError | null>(null);

  constructor(client: StrataClient) {
    this.#client = client;
  }

  /** The disk's jobs running or waiting, oldest first (the running one, then the queue). */
  liveOn(ref: DiskRef): JobEntry[] {
    const key = diskKey(ref);
    return [...this.#entries.values()].filter((e) => e.key === key && !e.finished).sort(byStart);
  }

  /** The last job that ended on the disk, if Strata saw it end. */
  lastEnded(ref: DiskRef): JobEntry | undefined {
    const key = diskKey(ref);
    return [...this.#entries.values()].filter((e) => e.key === key && e.finished).sort(byStart).pop();
  }

  lost(ref: DiskRef): Job | undefined {
    return this.#lost.get(diskKey(ref));
  }

  /** Jobs running or waiting, on every host, oldest first. */
  get current(): JobEntry[] {
    return [...this.#entries.values()].filter((e) => !e.finished).sort(byStart);
  }

  /** How many jobs run (or wait) on a domain, for its badge. */
  countOn(hostId: string, domain: string): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.hostId === hostId && e.domain === domain && !e.finished) n++;
    return n;
  }

  /** A queued job's place in its host's queue, from 1. */
  placeInQueue(job: Job): number {
    const queue = this.current.filter((e) => e.hostId === job.hostId && e.queued);
    return queue.findIndex((e) => e.id === job.id) + 1;
  }

  /** Called once for each job that ends while Strata watches. */
  onEnd(listener: (job: Job) => void): () => void {
    this.#endListeners.add(listener);
    return () => this.#endListeners.delete(listener);
  }

  /** Called for every change an event tells (see JobTransition); the listener picks the news. */
  onChange(listener: (job: Job, transition: JobTransition) => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** Merges a `job` event, then tells the listeners what happened, unless the event was stale. */
  apply(event: JobEvent): void {
    const { transition, ...job } = event;
    // An ended job changed again (its leftover removed or reused): the history shows it too,
    // though the disk's card may show a later ending.
    if (transition === 'amended') void this.loadHistory();
    if (!this.upsert(job)) return;
    if (transition === 'ended') this.#tell(this.#endListeners, (l) => l(job));
    this.#tell(this.#changeListeners, (l) => l(job, transition));
  }

  /** Merges a job from an event or a reply; returns false when it was older news than what is shown. */
  upsert(job: Job): boolean {
    const key = diskKey(job);
    let entry = this.#entries.get(job.id);
    let ended: boolean;
    if (entry) {
      if (!entry.isNews(job)) return false;
      ended = entry.update(job);
    } else {
      const newer = this.lastEnded(job);
      // An ended job older than the disk's last known ending is stale news.
      if (isFinished(job) && newer && newer.seenAt > job.startedAt) return false;
      entry = new JobEntry(job, this.#launched.get(key) ?? null);
      this.#launched.delete(key);
      this.#entries.set(job.id, entry);
      ended = isFinished(job);
    }
    this.#lost.delete(key);
    if (ended) {
      // Only the latest ending of a disk stays on its card.
      for (const [id, other] of this.#entries) {
        if (other !== entry && other.key === key && other.finished && other.seenAt <= entry.seenAt) this.#entries.delete(id);
      }
    }
    return true;
  }

  #tell<L>(listeners: Set<L>, call: (listener: L) => void): void {
    for (const listener of listeners) {
      try {
        call(listener);
      } catch (error) {
        console.error('Strata: a job listener failed', error);
      }
    }
  }

  /**
   * Reads the jobs of every host. Running jobs this store knows of that the list no longer has
   * ended while Strata was not listening; they are set aside as "lost track of" rather than
   * given an invented outcome. Only a job shown before the list was asked for, and not changed
   * by an event since, can be lost: one that started or moved while the list was in flight is
   * newer news than the list, which was made before it.
   */
  async load(): Promise<void> {
    const shownBefore = new Map([...this.#entries].map(([id, entry]) => [id, entry.job]));
    try {
      const jobs = await this.#client.call('jobs.list', {});
      const listed = new Set(jobs.map((job) => job.id));
      for (const [id, entry] of this.#entries) {
        if (!entry.finished && !listed.has(id) && shownBefore.get(id) === entry.job) {
          this.#entries.delete(id);
          this.#lost.set(diskKey(entry.job), entry.job);
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

  /** Re-reads the history; a burst of endings collapses into one extra read. */
  readonly loadHistory = coalesced(async () => {
    try {
      this.history = (await this.#client.call('history.list', {})).reverse();
      this.historyError = null;
    } catch (error) {
      this.historyError = toShownError(error);
    }
  });

  exportHistory(): Promise<{ fileName: string; json: string }> {
    return this.#client.call('history.export', {});
  }

  preview(ref: DiskRef, operation: Operation): Promise<ChainPreview> {
    return this.#client.call('operation.preview', { ...ref, operation });
  }

  async start(ref: DiskRef, operation: JobOperation, options: StartOptions): Promise<Job> {
    this.#launched.set(diskKey(ref), operation);
    try {
      const job = await this.#client.call('job.start', { ...ref, operation, ...options });
      this.upsert(job);
      return job;
    } finally {
      this.#launched.delete(diskKey(ref));
    }
  }

  /** With `named`, libvirt keeps the new layer as a named snapshot. */
  snapshot(ref: DiskRef, destination: string | undefined, named?: { name: string; description?: string }): Promise<Disk> {
    return this.#client.call('disk.snapshot', { ...ref, ...(destination ? { destination } : {}), ...(named ?? {}) });
  }

  revertPreview(ref: DiskRef, layer: string, deleteFiles: boolean): Promise<RevertPreview> {
    return this.#client.call('revert.preview', { ...ref, layer, deleteFiles });
  }

  revert(ref: DiskRef, layer: string, deleteFiles: boolean, confirm: RevertPreview['needs']): Promise<RevertResult> {
    return this.#client.call('disk.revert', { ...ref, layer, deleteFiles, confirm });
  }

  grow(ref: DiskRef, bytes: number): Promise<GrowResult> {
    return this.#client.call('disk.grow', { ...ref, bytes });
  }

  async setSpeed(ref: DiskRef, bandwidthBytesPerSec: number): Promise<Job> {
    return this.#merge(await this.#client.call('job.setSpeed', { ...ref, bandwidthBytesPerSec }));
  }

  async pivot(ref: DiskRef): Promise<Job> {
    return this.#merge(await this.#client.call('job.pivot', { ...ref }));
  }

  /** Aborts a running job, or takes a queued one out of the queue. */
  async abort(ref: DiskRef): Promise<Job> {
    return this.#merge(await this.#client.call('job.abort', { ...ref }));
  }

  /** Deletes the file a failed or cancelled copy left; the user has confirmed it. */
  async removeLeftover(job: Job): Promise<Job> {
    return this.#merge(await this.#client.call('job.removeLeftover', { hostId: job.hostId, jobId: job.id, confirm: ['delete-files'] }));
  }

  #merge(job: Job): Job {
    this.upsert(job);
    return job;
  }
}
