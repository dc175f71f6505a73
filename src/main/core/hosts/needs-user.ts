// Failures that retrying cannot fix: the user must act (join a group, start a daemon, accept a
// host key, give a passphrase). A host that meets one stops its backoff and waits in state
// 'needs-user' until Retry or a change of a watched path. Two ways to mark a failure so:
//  - throw NeedsUserError from anywhere on the connection's path (the open, a check before it);
//  - add a classifier to `accessClassifiers` (access-classifiers.ts), which turns what libvirt
//    threw into a NeedsUserError.
import type { AccessFix, AccessProblem, AccessProblemKind } from '../../../shared/access.ts';
import { StrataError } from '../../../shared/errors.ts';

export class NeedsUserError extends StrataError {
  override name = 'NeedsUserError';
  readonly problem: AccessProblem;

  /** `message` says what failed, `hint` the first thing to do; `problem` carries every fix. */
  constructor(message: string, hint: string, problem: AccessProblem, options: { cause?: unknown } = {}) {
    super('unavailable', message, { hint, cause: options.cause });
    this.problem = problem;
  }
}

/** What a classifier knows of the attempt besides the error. */
export interface AttemptContext {
  uri: string;
  /** The host was connected earlier in this run: a daemon that vanished may be restarting. */
  afterLoss: boolean;
}

/** Shorthand for building a problem. */
export function accessProblem(kind: AccessProblemKind, detail: string, fixes: AccessFix[], watching: string[] = []): AccessProblem {
  return { kind, detail, fixes, watching };
}
