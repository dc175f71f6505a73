// How a job that ended out of sight (the daemon was away, or the end event was lost) ended,
// judged by its effect: the expected chain means it completed; an unchanged chain means it was
// cancelled or failed, which libvirt can no longer tell apart.
import type { Job, JobPhase } from '../../../shared/model.ts';

export interface ExpectedChains {
  before: string[];
  after: string[];
}

const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((p, i) => p === b[i]);

/**
 * `chain` is the disk's chain now (paths, active first), or null when it cannot be read;
 * `domainRunning` false when the domain has stopped (or, transient, is gone).
 */
export function judgeVanished(
  job: Pick<Job, 'phase' | 'type' | 'domain' | 'disk'>,
  chain: string[] | null,
  expected: ExpectedChains | undefined,
  domainRunning = true,
): { phase: JobPhase; outcome: string } {
  if (job.phase === 'aborting') return { phase: 'cancelled', outcome: 'cancelled' };
  const done = chain !== null && (expected ? same(chain, expected.after) : job.type === 'pull' && chain.length === 1);
  // QEMU runs the job: when it ends (killed, crashed, shut down), the job ends unfinished with it,
  // and libvirt sends no job event to say so.
  if (!domainRunning && !done) {
    return { phase: 'failed', outcome: `failed: ${job.domain} stopped while the job ran, and its QEMU process took the job with it` };
  }
  if (chain === null) return { phase: 'unknown', outcome: `ended out of sight, and ${job.domain}/${job.disk} can no longer be read` };
  if (expected && same(chain, expected.after)) return { phase: 'completed', outcome: 'completed (seen from the chain, after a reconnect)' };
  if (!expected && job.type === 'pull' && chain.length === 1) return { phase: 'completed', outcome: 'completed (seen from the chain)' };
  if (expected && same(chain, expected.before)) {
    return { phase: 'unknown', outcome: 'ended out of sight without changing the chain: cancelled or failed, which libvirt cannot tell now' };
  }
  return { phase: 'unknown', outcome: 'ended out of sight; its outcome cannot be known' };
}
