// The classifiers that name failures needing the user (see needs-user.ts), asked in order.
import { localAccessProblem } from './local-access.ts';
import { NeedsUserError, type AttemptContext } from './needs-user.ts';

/** Names a failure that needs the user, or returns null to leave it to the backoff. */
export type AccessClassifier = (err: unknown, attempt: AttemptContext) => NeedsUserError | null;

/** The first answer wins. */
const accessClassifiers: readonly AccessClassifier[] = [localAccessProblem];

/** The NeedsUserError this failure is, or null when it is transient (retry with backoff). */
export function needsUser(err: unknown, attempt: AttemptContext): NeedsUserError | null {
  if (err instanceof NeedsUserError) return err;
  for (const classify of accessClassifiers) {
    const found = classify(err, attempt);
    if (found) return found;
  }
  return null;
}
