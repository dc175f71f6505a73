// One block job on a shut-off domain's images, run by its own qemu-storage-daemon: the same jobs,
// live speed changes, cancel, progress and events as a running domain's. The data moves here; the
// domain's definition is rewritten afterwards by the caller (domain-definition.ts), so a job that
// fails or is cancelled leaves the domain as it was.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { checkImage, createImage, ImageToolError, readImageChain, type CheckResult } from './image-tool.ts';
import { IntentStore, type IntentStep, type OfflineIntent } from './intents.ts';
import { OfflinePlanError, planOffline, TARGET_FILE_NODE, TARGET_NODE, type OfflineOperation, type OfflinePlan } from './plan.ts';
import { QmpClosedError, QmpError, type QmpEvent, type QmpObject, type QmpValue } from './qmp.ts';
import { chainBlockdevs, StorageDaemon } from './storage-daemon.ts';

export type OfflineEnd = 'completed' | 'cancelled' | 'failed';

export interface OfflineProgress {
  /** QMP's offset/len: bytes done and bytes to do (len can grow during a mirror). */
  cur: number;
  end: number;
  bandwidthBytesPerSec: number;
  ready: boolean;
  /** QEMU's job status: created, running, ready, concluded, … */
  status: string;
}

export type OfflineJobEvent =
  | { kind: 'status'; status: string }
  | { kind: 'ready' }
  /** BLOCK_JOB_ERROR: an I/O error, and what QEMU did about it. */
  | { kind: 'io-error'; operation: string; action: string }
  | { kind: 'end'; outcome: OfflineOutcome };

export interface OfflineOutcome {
  status: OfflineEnd;
  /** QEMU's words when the job failed; null otherwise. */
  message: string | null;
  /** The chain afterwards, active layer first: the new chain when completed, the old one otherwise. */
  chain: { path: string; format: string }[];
  /** A file the job created and the chain does not use (a cancelled or failed copy's destination). */
  leftover: string | null;
  /** `qemu-img check` of every image the job touched, after the daemon closed them. */
  checks: CheckResult[];
}

export interface OfflineJobOptions {
  domain: string;
  disk: string;
  operation: OfflineOperation;
  bandwidthBytesPerSec: number;
  /** Where intent records go; without one the job keeps none (tests of the engine alone). */
  intents?: IntentStore;
  jobId?: string;
  /** How long the daemon has to quit before it is killed. */
  stopTimeoutMs?: number;
  /** Kept in the intent record, for the Strata that follows the job after a restart. */
  record?: Pick<OfflineIntent, 'hostUri' | 'modelJobId' | 'keepDefinition' | 'type'>;
}

function str(v: QmpValue | undefined): string {
  return typeof v === 'string' ? v : '';
}

export class OfflineJob {
  readonly id: string;
  readonly qmpJobId: string;
  readonly done: Promise<OfflineOutcome>;
  #listeners = new Set<(event: OfflineJobEvent) => void>();
  #daemon: StorageDaemon | null = null;
  #intent: OfflineIntent;
  #plan: OfflinePlan;
  #store: IntentStore | null;
  #cancelRequested = false;
  #stopTimeoutMs: number;
  #bandwidth: number;

  private constructor(plan: OfflinePlan, intent: OfflineIntent, store: IntentStore | null, stopTimeoutMs: number, run: (job: OfflineJob) => Promise<OfflineOutcome>) {
    this.#plan = plan;
    this.#intent = intent;
    this.#store = store;
    this.id = intent.jobId;
    this.qmpJobId = intent.qmpJobId;
    this.#stopTimeoutMs = stopTimeoutMs;
    this.#bandwidth = intent.bandwidthBytesPerSec;
    this.done = run(this)
      .catch(async (err: unknown): Promise<OfflineOutcome> => {
        // A step that threw (an intent record that could not be written, …): the daemon still
        // goes, and the job ends failed with the chain it had.
        await this.#daemon?.stop(this.#stopTimeoutMs).catch(() => undefined);
        const message = err instanceof Error ? err.message : String(err);
        return { status: 'failed', message, chain: plan.chain.map((l) => ({ path: l.path, format: l.format })), leftover: plan.target && existsSync(plan.target.path) ? plan.target.path : null, checks: [] };
      })
      .then((outcome) => {
        this.#emit({ kind: 'end', outcome });
        return outcome;
      });
  }

  get plan(): OfflinePlan {
    return this.#plan;
  }

  get intent(): OfflineIntent {
    return this.#intent;
  }

  /** The daemon's pid while it runs (for tests and the report of a running job). */
  get daemonPid(): number | null {
    return this.#daemon?.pid ?? null;
  }

  /**
   * Plans from the image headers (throwing OfflinePlanError for an impossible operation), then runs
   * in the background; `done` settles with the outcome. Never rejects once started: a failure is an
   * outcome with the images checked.
   */
  static async start(options: OfflineJobOptions): Promise<OfflineJob> {
    let chain: Awaited<ReturnType<typeof readImageChain>>;
    try {
      chain = await readImageChain(options.operation.image);
    } catch (err) {
      if (err instanceof ImageToolError && /lock/.test(err.message)) {
        throw new OfflinePlanError(
          `${options.operation.image} is in use: another process holds QEMU's lock on it (is ${options.domain} running?). ` +
            'Operations on a running domain go through libvirt instead',
        );
      }
      throw err;
    }
    const plan = planOffline(options.operation, chain);
    const id = options.jobId ?? `offline-${Date.now()}-${randomBytes(4).toString('hex')}`;
    const now = new Date().toISOString();
    const intent: OfflineIntent = {
      version: 1,
      jobId: id,
      ...options.record,
      domain: options.domain,
      disk: options.disk,
      operation: options.operation,
      chainBefore: chain.map((l) => ({ path: l.path, format: l.format, backingRecorded: l.backingRecorded })),
      chainAfter: plan.chainAfter,
      target: plan.target?.path ?? null,
      step: 'planned',
      daemon: null,
      qmpJobId: `strata-${randomBytes(4).toString('hex')}`,
      bandwidthBytesPerSec: options.bandwidthBytesPerSec,
      startedAt: now,
      updatedAt: now,
    };
    const store = options.intents ?? null;
    await store?.write(intent);
    return new OfflineJob(plan, intent, store, options.stopTimeoutMs ?? 10_000, (job) => job.#run());
  }

  /**
   * Follows a job whose Strata crashed while its daemon kept running: reconnects to the daemon's
   * socket and takes the job to the end it was started for (`job-complete` at ready).
   */
  static async follow(intent: OfflineIntent, store: IntentStore | null, stopTimeoutMs = 10_000): Promise<OfflineJob> {
    if (!intent.daemon) throw new Error(`the record of ${intent.jobId} names no daemon`);
    const chain = intent.chainBefore.map((l) => ({ ...l, virtualSize: 0, backingFormat: null, internalSnapshots: [] }));
    const plan = planOffline(intent.operation, chain, { resumed: true });
    const daemon = await StorageDaemon.attach(intent.daemon.pid, intent.daemon.socket, intent.daemon.runtimeDir);
    return new OfflineJob(plan, intent, store, stopTimeoutMs, (job) => {
      job.#daemon = daemon;
      job.#startSent = true;
      return job.#watch();
    });
  }

  onEvent(listener: (event: OfflineJobEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** query-block-jobs for this job; null before the job exists in the daemon or after it ended. */
  async progress(): Promise<OfflineProgress | null> {
    const daemon = this.#daemon;
    if (!daemon || daemon.qmp.closed) return null;
    let jobs: QmpValue;
    try {
      jobs = await daemon.qmp.execute('query-block-jobs');
    } catch {
      return null;
    }
    if (!Array.isArray(jobs)) return null;
    for (const j of jobs) {
      if (typeof j !== 'object' || j === null || Array.isArray(j) || j['device'] !== this.qmpJobId) continue;
      return {
        cur: Number(j['offset'] ?? 0),
        end: Number(j['len'] ?? 0),
        bandwidthBytesPerSec: Number(j['speed'] ?? 0),
        ready: j['ready'] === true,
        status: str(j['status']),
      };
    }
    return null;
  }

  /** Changes the running job's rate at once (`block-job-set-speed`); 0 lifts the limit. */
  async setSpeed(bandwidthBytesPerSec: number): Promise<void> {
    if (!Number.isSafeInteger(bandwidthBytesPerSec) || bandwidthBytesPerSec < 0) {
      throw new RangeError(`bandwidthBytesPerSec must be a whole number of bytes per second, 0 or more, not ${bandwidthBytesPerSec}`);
    }
    // Kept first: a job not yet created in its daemon starts at this rate (its start command is
    // built from it, and QMP runs commands in the order they came).
    this.#bandwidth = bandwidthBytesPerSec;
    const daemon = this.#daemon;
    if (daemon) {
      try {
        await daemon.qmp.execute('block-job-set-speed', { device: this.qmpJobId, speed: bandwidthBytesPerSec });
      } catch (err) {
        if (!(err instanceof QmpError) || this.#startSent) throw err;
      }
    }
    await this.#record(this.#intent.step, { bandwidthBytesPerSec });
  }

  get bandwidthBytesPerSec(): number {
    return this.#bandwidth;
  }

  /**
   * Cancels; the end comes as the outcome `cancelled` (or `completed` if the job won the race). A
   * daemon that has not ended the job within the stop timeout is stopped (killed if need be).
   */
  async cancel(): Promise<void> {
    this.#cancelRequested = true;
    const daemon = this.#daemon;
    if (!daemon) {
      // Its daemon may be starting: that start ends now, and the job with it.
      this.#starting?.abort();
      return;
    }
    const timer = setTimeout(() => {
      this.#killedAfterCancel = true;
      void daemon.stop(this.#stopTimeoutMs);
    }, this.#stopTimeoutMs);
    void this.done.finally(() => clearTimeout(timer));
    try {
      // force: a ready mirror cancelled without it would complete instead.
      await daemon.qmp.execute('block-job-cancel', { device: this.qmpJobId, force: true });
    } catch (err) {
      // The job already concluded (its end is on its way), or the daemon is gone (so is the job).
      if (!(err instanceof QmpError) && !(err instanceof QmpClosedError)) throw err;
    }
  }

  #killedAfterCancel = false;
  #detached = false;

  /**
   * Lets go of the daemon without stopping it (Strata quits; quitting never stops a job): the job
   * runs on, its intent record names the daemon, and the next start follows it. `done` does not
   * settle then: the job's end belongs to that next start.
   */
  detach(): void {
    this.#detached = true;
    this.#daemon?.qmp.close();
  }
  /** The command that creates the job in the daemon has been sent. */
  #startSent = false;
  /** Aborts the daemon's start while it is under way. */
  #starting: AbortController | null = null;

  #emit(event: OfflineJobEvent): void {
    for (const listener of [...this.#listeners]) listener(event);
  }

  async #record(step: IntentStep, patch: Partial<OfflineIntent> = {}): Promise<void> {
    this.#intent = { ...this.#intent, ...patch, step };
    await this.#store?.write(this.#intent);
  }

  async #run(): Promise<OfflineOutcome> {
    const plan = this.#plan;
    try {
      if (plan.target) {
        await this.#record('target-created');
        await createImage(plan.target.path, plan.target);
      }
      if (this.#cancelRequested) return await this.#finish('cancelled', null);
      this.#starting = new AbortController();
      let daemon: StorageDaemon;
      try {
        daemon = await StorageDaemon.start({ nodes: chainBlockdevs(plan.chain, plan.writable), signal: this.#starting.signal });
      } finally {
        this.#starting = null;
      }
      this.#daemon = daemon;
      if (this.#cancelRequested) return await this.#finish('cancelled', null);
      await this.#record('daemon-started', { daemon: { pid: daemon.pid, socket: daemon.socket, runtimeDir: daemon.runtimeDir } });
      if (plan.target) {
        await daemon.qmp.execute('blockdev-add', { driver: 'file', 'node-name': TARGET_FILE_NODE, filename: plan.target.path });
        const target: QmpObject = { driver: plan.target.format, 'node-name': TARGET_NODE, file: TARGET_FILE_NODE };
        if (plan.target.format === 'qcow2' && plan.target.openBacking !== 'header') target['backing'] = plan.target.backing ? 'strata-layer1' : null;
        await daemon.qmp.execute('blockdev-add', target);
      }
      for (const step of plan.prepare) await daemon.qmp.execute(step.command, step.args);
      await this.#record('job-started');
      this.#startSent = true;
      await daemon.qmp.execute(plan.command, {
        ...plan.args,
        'job-id': this.qmpJobId,
        speed: this.#bandwidth,
        'auto-dismiss': false,
      });
      if (this.#cancelRequested) await this.cancel();
    } catch (err) {
      // Strata let go of the daemon while the job was being set up (the monitor closed under a
      // command): the daemon is the next start's to follow, not to be stopped here.
      if (this.#detached && err instanceof QmpClosedError) return new Promise<OfflineOutcome>(() => undefined);
      // Cancelled while it was being set up: what failed then is what the cancel stopped.
      return this.#finish(this.#cancelRequested ? 'cancelled' : 'failed', err instanceof Error ? err.message : String(err));
    }
    return this.#watch();
  }

  /**
   * Waits for the job's conclusion. Jobs run with auto-dismiss off, so a job that concluded while
   * nobody watched is still in `query-jobs` with its error, and its end is never lost.
   */
  async #watch(): Promise<OfflineOutcome> {
    const daemon = this.#daemon!;
    const concluded = new Promise<void>((resolve) => {
      const check = async (): Promise<void> => {
        const status = await this.#jobStatus();
        if (status === null || status === 'concluded' || status === 'null') resolve();
        else if (status === 'ready') await this.#onReady();
      };
      daemon.qmp.onEvent((e: QmpEvent) => {
        if (e.event === 'JOB_STATUS_CHANGE' && e.data['id'] === this.qmpJobId) {
          const status = str(e.data['status']);
          this.#emit({ kind: 'status', status });
          if (status === 'concluded') resolve();
        } else if (e.event === 'BLOCK_JOB_READY' && e.data['device'] === this.qmpJobId) {
          this.#emit({ kind: 'ready' });
          void this.#onReady();
        } else if (e.event === 'BLOCK_JOB_ERROR' && e.data['device'] === this.qmpJobId) {
          this.#emit({ kind: 'io-error', operation: str(e.data['operation']), action: str(e.data['action']) });
        }
      });
      daemon.qmp.onClose(() => resolve());
      void check().catch(() => resolve());
    });
    await concluded;
    if (this.#detached) return new Promise<OfflineOutcome>(() => undefined);
    const info = await this.#concludedInfo();
    if (info === null && this.#killedAfterCancel) {
      return this.#finish('cancelled', `qemu-storage-daemon (pid ${daemon.pid}) did not end the job within ${this.#stopTimeoutMs} ms of the cancel and was stopped`);
    }
    if (info === null) return this.#finish('failed', `qemu-storage-daemon (pid ${daemon.pid}) ended before the job concluded`);
    if (info.error === null) {
      await this.#record('data-complete');
      return this.#finish('completed', null);
    }
    return this.#finish(this.#cancelRequested || /cancel/i.test(info.error) ? 'cancelled' : 'failed', info.error);
  }

  #completing = false;

  async #onReady(): Promise<void> {
    if (this.#completing || this.#cancelRequested) return;
    this.#completing = true;
    try {
      await this.#daemon!.qmp.execute('job-complete', { id: this.qmpJobId });
    } catch (err) {
      // Refused (not ready after all): the next READY tries again. A closed monitor ends the
      // watch by itself.
      if (err instanceof QmpError) this.#completing = false;
    }
  }

  async #jobStatus(): Promise<string | null> {
    const jobs = await this.#daemon!.qmp.execute('query-jobs');
    if (!Array.isArray(jobs)) return null;
    const j = jobs.find((x) => typeof x === 'object' && x !== null && !Array.isArray(x) && x['id'] === this.qmpJobId);
    if (!j || typeof j !== 'object' || Array.isArray(j)) return null;
    return str(j['status']);
  }

  /** The concluded job's error (null for success), then dismissed; null when the daemon is gone. */
  async #concludedInfo(): Promise<{ error: string | null } | null> {
    const qmp = this.#daemon!.qmp;
    if (qmp.closed) return null;
    let jobs: QmpValue;
    try {
      jobs = await qmp.execute('query-jobs');
    } catch {
      return null;
    }
    const j = Array.isArray(jobs) ? jobs.find((x) => typeof x === 'object' && x !== null && !Array.isArray(x) && x['id'] === this.qmpJobId) : undefined;
    if (!j || typeof j !== 'object' || Array.isArray(j) || j['status'] !== 'concluded') return null;
    await qmp.execute('job-dismiss', { id: this.qmpJobId }).catch(() => undefined);
    return { error: typeof j['error'] === 'string' ? j['error'] : null };
  }

  /** Stops the daemon (it flushes and closes every image), checks the images and settles. */
  async #finish(status: OfflineEnd, message: string | null): Promise<OfflineOutcome> {
    const daemon = this.#daemon;
    if (status !== 'completed' && daemon && !daemon.qmp.closed) {
      // A step that was not done (a bitmap not added yet) has nothing to undo: its refusal is fine.
      for (const step of this.#plan.undo) await daemon.qmp.execute(step.command, step.args).catch(() => undefined);
    }
    await daemon?.stop(this.#stopTimeoutMs);
    const plan = this.#plan;
    const chain = status === 'completed' ? plan.chainAfter : plan.chain.map((l) => ({ path: l.path, format: l.format }));
    let leftover = status === 'completed' ? null : plan.target?.path ?? null;
    if (leftover && this.#intent.step === 'target-created') {
      // Cancelled before the daemon opened it: the new file holds nothing, and goes.
      await rm(leftover, { force: true });
      leftover = null;
    }
    // A completed backup's new file is checked too: the chain it read is not where its data went.
    const made = status === 'completed' && plan.operation.kind === 'backup' ? plan.target : null;
    const touched = [...chain, ...(leftover ? [{ path: leftover, format: plan.target!.format }] : []), ...(made ? [{ path: made.path, format: made.format }] : [])];
    const checks: CheckResult[] = [];
    for (const image of touched) {
      try {
        checks.push(await checkImage(image.path, image.format));
      } catch (err) {
        checks.push({ path: image.path, clean: false, corruptions: 0, leaks: 0, detail: err instanceof Error ? err.message : String(err) });
      }
    }
    return { status, message, chain, leftover, checks };
  }
}
