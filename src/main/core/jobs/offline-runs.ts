// The engine behind a job on a shut-off domain: one qemu-storage-daemon per job (core/offline),
// seen by the job model like a libvirt block job. JobRunner asks it what it asks libvirt for a
// running domain (start, progress, limit, cancel); its end is told to the tracker with what
// happened to the images and the definition, which it rewrites only once the data is complete.
import { rm } from 'node:fs/promises';
import type { JobOperation } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { Disk, JobType } from '../../../shared/model.ts';
import type { RawBlockJob } from '../../libvirt/types.ts';
import { log } from '../../log/logger.ts';
import { layerAt } from '../chains/preview.ts';
import type { DefinitionAccess } from '../offline/domain-definition.ts';
import { ImageToolError, type CheckResult } from '../offline/image-tool.ts';
import type { IntentStore, OfflineIntent } from '../offline/intents.ts';
import { OfflineJob, type OfflineOutcome } from '../offline/offline-job.ts';
import { OfflinePlanError, type OfflineOperation } from '../offline/plan.ts';
import { findLeftoverJobs, isBackup, type LeftoverJob } from '../offline/recovery.ts';
import { settleOfflineJob } from '../offline/settle.ts';
import type { JobTracker } from './job-tracker.ts';
import { diskKey } from './tracked-job.ts';

export interface OfflineRunsDeps {
  hostId: string;
  hostUri: string;
  /** Null when offline jobs can run on this host; otherwise why not (its images are elsewhere). */
  refusal: string | null;
  /** Intent records in the data folder; null runs jobs without them (no crash recovery). */
  intents: IntentStore | null;
  definition: DefinitionAccess;
  jobs: JobTracker;
  /** How long a daemon has to end a job after a cancel, or to quit, before it is killed. */
  stopTimeoutMs?: number;
}

interface Run {
  job: OfflineJob;
  type: JobType;
  /** Files the definition no longer names once it is rewritten, deleted then (a commit's deleteLayers). */
  deleteAfter: string[];
  /** The last progress read: shown while the daemon closes the images and the end is settled. */
  last: RawBlockJob;
  /** A job on files of Strata's own (a restore): it settles its end itself. */
  finish?: OfflineFinish;
}

/**
 * How a job on files of Strata's own ends, once its daemon has stopped and the images are checked:
 * the status and words the job ends with. It never touches the definition through the intent record.
 */
export type OfflineFinish = (outcome: OfflineOutcome) => Promise<{ status: 'completed' | 'failed' | 'cancelled'; words: string }>;

/** What the job model needs to know of an offline job at its start. */
export interface OfflineStart {
  type: JobType;
  /** A copy's new file: what a failed or cancelled copy leaves. */
  created: string | null;
}

const endStatus = (s: string): 'completed' | 'failed' | 'cancelled' => (s === 'completed' || s === 'cancelled' ? s : 'failed');

/** The operation in image paths, as the daemon runs it; layers named by their place in the chain. */
export function offlineOperation(disk: Disk, op: JobOperation): { operation: OfflineOperation; type: JobType } {
  const chain = disk.chain;
  const active = chain[0];
  if (!active || active.type !== 'file') {
    throw new StrataError('conflict', `${disk.target} has no image file: an offline job works on files only`);
  }
  switch (op.kind) {
    case 'pull':
      return { operation: { kind: 'pull', image: active.path, base: op.base === undefined ? null : layerAt(disk, op.base, 'base').layer.path }, type: 'pull' };
    case 'commit': {
      const top = op.top === undefined ? active : layerAt(disk, op.top, 'top').layer;
      const base = op.base === undefined ? chain[chain.length - 1]! : layerAt(disk, op.base, 'base').layer;
      return { operation: { kind: 'commit', image: active.path, top: top.path, base: base.path }, type: top === active ? 'active-commit' : 'commit' };
    }
    case 'copy':
      if (op.reuseExisting) {
        throw new StrataError('invalid-request', 'an offline copy writes a new file: it cannot write into an existing one', {
          hint: 'Choose a new destination, or start the domain to copy into an existing file through libvirt.',
        });
      }
      return { operation: { kind: 'copy', image: active.path, destination: op.destination, format: op.format, shallow: op.shallow }, type: 'copy' };
  }
}

function checksWords(checks: readonly CheckResult[]): string {
  const dirty = checks.filter((c) => !c.clean);
  if (checks.length === 0) return '';
  return dirty.length
    ? `; qemu-img check finds problems in ${dirty.map((c) => c.path).join(', ')}`
    : `; ${checks.length === 1 ? 'its image passes' : `all ${checks.length} images pass`} qemu-img check`;
}

export class OfflineRuns {
  readonly #deps: OfflineRunsDeps;
  readonly #runs = new Map<string, Run>();

  constructor(deps: OfflineRunsDeps) {
    this.#deps = deps;
  }

  /** Throws the reason offline jobs cannot run on this host, if there is one. */
  refuseHere(domain: string): void {
    if (this.#deps.refusal) {
      throw new StrataError('conflict', `${domain} is shut off, and ${this.#deps.refusal}`, {
        hint: 'Start the domain to run the job through libvirt on that host.',
      });
    }
  }

  has(domain: string, disk: string): boolean {
    return this.#runs.has(diskKey(domain, disk));
  }

  /**
   * Plans from the image headers and starts the daemon's job; `modelJobId` is the job model's id.
   * A copy with afterReady 'keep' leaves the definition as it is (the copy is a copy); otherwise
   * the definition names the new chain once the data is complete.
   */
  async launch(domain: string, disk: Disk, op: JobOperation, bandwidthBytesPerSec: number, modelJobId: string, deleteAfter: string[]): Promise<JobType> {
    const { operation, type } = offlineOperation(disk, op);
    let job: OfflineJob;
    try {
      job = await OfflineJob.start({
        domain,
        disk: disk.target,
        operation,
        bandwidthBytesPerSec,
        ...(this.#deps.intents ? { intents: this.#deps.intents } : {}),
        ...(this.#deps.stopTimeoutMs !== undefined ? { stopTimeoutMs: this.#deps.stopTimeoutMs } : {}),
        record: { hostUri: this.#deps.hostUri, modelJobId, type, keepDefinition: op.kind === 'copy' && op.afterReady === 'keep' },
      });
    } catch (err) {
      if (err instanceof OfflinePlanError || err instanceof ImageToolError) {
        throw new StrataError('conflict', `Could not start the offline ${op.kind} on ${domain}/${disk.target}: ${err.message}`, {
          hint: 'The chain was read from the image headers just now; refresh the domain and plan again.',
        });
      }
      throw err;
    }
    this.#follow(domain, disk.target, job, type, deleteAfter);
    return type;
  }

  /**
   * A job on files that are not the domain's chain (a restore from a backup set into a new
   * image): `operation` names them, and `finish` settles its end. The intent record keeps the
   * definition as it is, so a Strata that stops meanwhile never rewrites it for this job.
   */
  async launchOwn(domain: string, disk: string, operation: OfflineOperation, type: JobType, bandwidthBytesPerSec: number, modelJobId: string, finish: OfflineFinish): Promise<void> {
    let job: OfflineJob;
    try {
      job = await OfflineJob.start({
        domain,
        disk,
        operation,
        bandwidthBytesPerSec,
        ...(this.#deps.intents ? { intents: this.#deps.intents } : {}),
        ...(this.#deps.stopTimeoutMs !== undefined ? { stopTimeoutMs: this.#deps.stopTimeoutMs } : {}),
        record: { hostUri: this.#deps.hostUri, modelJobId, type, keepDefinition: true },
      });
    } catch (err) {
      if (err instanceof OfflinePlanError || err instanceof ImageToolError) {
        throw new StrataError('conflict', `Could not start the ${type} on ${domain}/${disk}: ${err.message}`);
      }
      throw err;
    }
    this.#follow(domain, disk, job, type, [], finish);
  }

  #follow(domain: string, disk: string, job: OfflineJob, type: JobType, deleteAfter: string[], finish?: OfflineFinish): void {
    const k = diskKey(domain, disk);
    const run: Run = { job, type, deleteAfter, last: { type, bandwidthBytesPerSec: job.bandwidthBytesPerSec, cur: 0, end: 0 }, ...(finish ? { finish } : {}) };
    this.#runs.set(k, run);
    void job.done.then(
      (outcome) => this.#ended(domain, disk, run, outcome),
      (err: unknown) => {
        this.#runs.delete(k);
        this.#deps.jobs.conclude(domain, disk, 'failed', `failed: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  }

  /**
   * The daemon's counters (query-block-jobs). While the job has concluded but its end is being
   * settled (images closed and checked, the definition written), the last counters stand.
   */
  async poll(domain: string, disk: string): Promise<RawBlockJob | null> {
    const run = this.#runs.get(diskKey(domain, disk));
    if (!run) return null;
    const p = await run.job.progress();
    if (p) run.last = { type: run.type, bandwidthBytesPerSec: p.bandwidthBytesPerSec, cur: p.cur, end: p.end };
    return { ...run.last, bandwidthBytesPerSec: run.job.bandwidthBytesPerSec };
  }

  async setSpeed(domain: string, disk: string, bandwidthBytesPerSec: number): Promise<void> {
    const run = this.#runs.get(diskKey(domain, disk));
    if (!run) throw new StrataError('conflict', `the offline job on ${domain}/${disk} has ended`);
    await run.job.setSpeed(bandwidthBytesPerSec);
  }

  async cancel(domain: string, disk: string): Promise<void> {
    const run = this.#runs.get(diskKey(domain, disk));
    if (!run) throw new StrataError('not-found', `${domain}/${disk} has no offline job running`);
    await run.job.cancel();
  }

  /** Strata stops: every daemon is left running for the next start to follow (see recover()). */
  detachAll(): void {
    for (const run of this.#runs.values()) run.job.detach();
    this.#runs.clear();
  }

  async #ended(domain: string, disk: string, run: Run, outcome: OfflineOutcome): Promise<void> {
    const k = diskKey(domain, disk);
    const intent = run.job.intent;
    if (run.finish) {
      let end: Awaited<ReturnType<OfflineFinish>>;
      try {
        end = await run.finish(outcome);
      } catch (err) {
        end = { status: 'failed', words: `failed: ${err instanceof Error ? err.message : String(err)}` };
      }
      await this.#deps.intents?.remove(intent.jobId).catch((err: unknown) => log.warn('the intent record of an ended job could not be removed', { job: intent.jobId, err }));
      if (this.#runs.get(k) === run) this.#runs.delete(k);
      this.#deps.jobs.conclude(domain, disk, end.status, end.words);
      return;
    }
    let status = endStatus(outcome.status);
    let words: string;
    try {
      words = await this.#settle(intent, status === 'completed', run.deleteAfter, outcome.message, status);
    } catch (err) {
      status = 'failed';
      words =
        `failed after the data was complete in ${intent.chainAfter[0]!.path}: ${domain}'s definition could not be rewritten ` +
        `(${err instanceof Error ? err.message : String(err)}); it still names ${intent.chainBefore[0]!.path}, and the next start of Strata tries again`;
    }
    if (this.#runs.get(k) === run) this.#runs.delete(k);
    this.#deps.jobs.conclude(domain, disk, status, words + checksWords(outcome.checks));
  }

  async #settle(intent: OfflineIntent, completed: boolean, deleteAfter: readonly string[], message: string | null, status: string): Promise<string> {
    const after = intent.chainAfter[0]!.path;
    if (!completed) {
      await settleOfflineJob(intent, false, this.#deps.intents, this.#deps.definition);
      const how = status === 'cancelled' ? 'cancelled' : `failed: ${message ?? 'qemu-storage-daemon gave no reason'}`;
      return `${how}; ${intent.domain} keeps the chain it had, its definition unchanged`;
    }
    if (intent.keepDefinition || isBackup(intent)) {
      await settleOfflineJob(intent, false, this.#deps.intents, this.#deps.definition);
      const what = isBackup(intent) ? `the backup is in ${intent.target ?? after}` : `the copy is in ${after}`;
      return `completed: ${what}; ${intent.domain} keeps its disk (its definition is unchanged)`;
    }
    await settleOfflineJob(intent, true, this.#deps.intents, this.#deps.definition);
    const gone: string[] = [];
    for (const path of deleteAfter) {
      try {
        await rm(path);
        gone.push(path);
      } catch (err) {
        log.warn('a layer the commit was to delete could not be deleted; it stays', { path, err });
      }
    }
    const changed = after === intent.chainBefore[0]!.path ? `its chain is ${intent.chainAfter.map((l) => l.path).join(' → ')}` : `${intent.disk} is now ${after}`;
    return `completed: ${intent.domain}'s definition rewritten, ${changed}${gone.length ? `; deleted ${gone.join(', ')}` : ''}`;
  }

  /**
   * At the host's first connection: the offline jobs a previous Strata left on this host. A job
   * whose daemon still runs is followed again to its end; one whose daemon is gone is settled (the
   * definition written when its data was complete) and told as ended, with its images checked.
   * `tell` puts each in the job model: the first with its type, the second how it ended.
   */
  async recover(tell: {
    adopt(domain: string, disk: string, type: JobType, bandwidthBytesPerSec: number, created: string | null): void;
    ended(domain: string, disk: string, type: JobType, status: 'completed' | 'failed', outcome: string, leftover: string | null): void;
  }): Promise<number> {
    const store = this.#deps.intents;
    if (!store || this.#deps.refusal) return 0;
    const found: LeftoverJob[] = await findLeftoverJobs(store, {
      which: (intent) => intent.hostUri === this.#deps.hostUri,
      ...(this.#deps.stopTimeoutMs !== undefined ? { stopTimeoutMs: this.#deps.stopTimeoutMs } : {}),
    });
    for (const left of found) {
      const intent = left.intent;
      const type = typeOf(intent);
      if (type === 'restore') {
        await this.#dropRestore(left, tell);
        continue;
      }
      if (left.daemon === 'alive') {
        log.warn('an offline job of a previous run is still under way; following it to its end', { host: this.#deps.hostId, domain: intent.domain, disk: intent.disk, operation: intent.operation.kind, pid: intent.daemon?.pid });
        tell.adopt(intent.domain, intent.disk, type, left.job.bandwidthBytesPerSec, intent.target);
        this.#follow(intent.domain, intent.disk, left.job, type, []);
        continue;
      }
      // A backup's end belongs to its set, which trusts no image its daemon did not close itself.
      let status: 'completed' | 'failed' = left.dataComplete && !isBackup(intent) ? 'completed' : 'failed';
      let words = left.message;
      try {
        await settleOfflineJob(intent, left.dataComplete && !intent.keepDefinition, store, this.#deps.definition);
      } catch (err) {
        status = 'failed';
        words += ` The definition could not be rewritten: ${err instanceof Error ? err.message : String(err)}.`;
      }
      log.warn(`an offline job of a previous run was found ended: ${words}`, { host: this.#deps.hostId, domain: intent.domain, disk: intent.disk });
      tell.ended(intent.domain, intent.disk, type, status, `found at start-up: ${words}`, left.leftover);
    }
    return found.length;
  }

  /**
   * A restore a previous Strata left: what it was to become (the name, a domain to switch) ended
   * with that Strata, and its image is linked to its name only by the end it never saw. So it is
   * stopped and its temporary file removed; the domain was not switched (that comes only after
   * the end), and the user restores again.
   */
  async #dropRestore(left: LeftoverJob, tell: { ended(domain: string, disk: string, type: JobType, status: 'completed' | 'failed', outcome: string, leftover: string | null): void }): Promise<void> {
    const intent = left.intent;
    if (left.daemon === 'alive') {
      await left.job.cancel();
      await left.job.done;
    }
    if (intent.target) await rm(intent.target, { force: true });
    await this.#deps.intents?.remove(intent.jobId);
    const words = `Strata stopped during a restore of ${intent.domain}/${intent.disk}: it was stopped${intent.target ? ` and its unfinished image ${intent.target} removed` : ''}; no disk was switched. Restore again.`;
    log.warn(`a restore of a previous run was found: ${words}`, { host: this.#deps.hostId, domain: intent.domain, disk: intent.disk });
    tell.ended(intent.domain, intent.disk, 'restore', 'failed', `found at start-up: ${words}`, null);
  }
}

function typeOf(intent: OfflineIntent): JobType {
  if (intent.type) return intent.type;
  const op = intent.operation;
  if (op.kind === 'commit') return op.top === op.image ? 'active-commit' : 'commit';
  return op.kind;
}
