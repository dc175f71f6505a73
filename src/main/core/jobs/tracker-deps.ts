// What a JobTracker needs from its host: how to poll a disk, settle a job that vanished, and
// where its events, history and leftovers go. Kept apart so the tracker holds only the lifecycle.
import type { Job, JobPhase, JobTransition, Leftover } from '../../../shared/model.ts';
import type { RawBlockJob } from '../../libvirt/types.ts';
import type { PollTimer } from './job-poller.ts';

export interface JobTrackerDeps {
  hostId: string;
  poll(domain: string, disk: string): Promise<RawBlockJob | null>;
  /** Decides how a job that disappeared without an event ended (e.g. by reading the chain). */
  settleVanished(job: Job): Promise<{ phase: JobPhase; outcome: string }>;
  emit(job: Job, transition: JobTransition): void;
  /** Keeps an ended job in the history; called once per job. */
  record?(job: Job): void;
  /** Writes an ended job's changed record over the one kept. */
  rerecord?(job: Job): Promise<void>;
  /** Called once when a job has ended, so the host can re-read the disk's chain. */
  ended(job: Job): void;
  /** Why a job libvirt reports failed did fail, when the host can tell (the event cannot). */
  failureReason?(job: Job): string | null;
  /**
   * The file an ended job created and left unused (a failed or cancelled copy), if any;
   * `reachedReady`: the job was in sync at some point, so what it wrote is a whole image.
   */
  leftover?(job: Job, reachedReady: boolean): Leftover | null;
  /** Called when a copy or active commit reaches ready, so Strata can pivot or keep. */
  ready?(job: Job): void;
  watched(): boolean;
  now?: () => number;
  /** How often a running job is polled: keeps shown progress at most this old. */
  pollIntervalMs?: number;
  pollTimer?: PollTimer;
}
