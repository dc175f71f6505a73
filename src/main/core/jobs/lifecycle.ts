// The phases of a job and the only changes allowed between them. The job tracker moves every job
// through this table; a change it does not list is a bug in Strata, thrown so that tests find it.
import { StrataError } from '../../../shared/errors.ts';
import type { JobPhase } from '../../../shared/model.ts';

const ends = ['completed', 'failed', 'cancelled', 'unknown'] as const satisfies readonly JobPhase[];

/**
 * queued: waiting for room on the host; requested: libvirt is being asked to start it;
 * running → ready (copies and active commits) → pivoting or aborting → an end. 'unknown' is an
 * end seen only from its effect, when libvirt could no longer say (see settle.ts).
 */
export const allowedTransitions: Readonly<Record<JobPhase, readonly JobPhase[]>> = {
  // Cancelled before it started, or failed to start after its wait (the chain changed meanwhile).
  queued: ['requested', 'cancelled', 'failed'],
  // A fast job's ready or end event can come before the call that started it returns.
  requested: ['running', 'ready', 'completed', 'failed', 'cancelled'],
  running: ['ready', 'aborting', ...ends],
  ready: ['pivoting', 'aborting', ...ends],
  // A refused pivot leaves the job ready, as it was.
  pivoting: ['ready', ...ends],
  // A refused abort leaves the job where it was; a kept chain ends 'completed'.
  aborting: ['running', 'ready', ...ends],
  completed: [],
  failed: [],
  cancelled: [],
  unknown: [],
};

export function canMove(from: JobPhase, to: JobPhase): boolean {
  return allowedTransitions[from].includes(to);
}

/** Throws when `from → to` is not in the table. */
export function assertMove(from: JobPhase, to: JobPhase, what: string): void {
  if (!canMove(from, to)) {
    throw new StrataError('internal', `illegal job transition ${from} → ${to} (${what})`, {
      hint: 'This is a bug in Strata; the log has the job. The job itself is unaffected in libvirt.',
    });
  }
}
