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
  // QEMU runs the job: when it ends (killed, crashed, shut down), the job ends unfinished with it,
  // and libvirt sends no job event to say so. A stopped domain's chain proves nothing: it comes
  // from the inactive definition, which names only the top image (measured: a pull killed with
  // its QEMU then looked complete, while the top image still needs its base layers).
  if (!domainRunning) {
    if (chain !== null) return { phase: 'failed', outcome: `failed: ${job.domain} stopped while the job ran, and its QEMU process took the job with it` };
    // Measured with libvirt 9.0: a libvirtd killed mid-pivot leaves a status file it cannot load
    // again ("unknown mirror job type ''"), and forgets the domain while its QEMU runs on.
    if (job.phase === 'pivoting') {
      return {
        phase: 'unknown',
        outcome: `${job.domain} vanished from libvirt during the pivot: whether the disk switched cannot be known, and its QEMU may still run unseen by libvirt`,
      };
    }
    // Unknown, not failed: the job may have completed just before, its event lost with the domain.
    return {
      phase: 'unknown',
      outcome:
        `ended out of sight, and ${job.domain}/${job.disk} can no longer be read: ${job.domain} is gone from libvirt ` +
        '(its QEMU process ended, and a transient domain leaves nothing behind; or libvirt lost track of it)',
    };
  }
  if (chain === null) return { phase: 'unknown', outcome: `ended out of sight, and ${job.domain}/${job.disk} can no longer be read` };
  if (expected && same(chain, expected.after)) return { phase: 'completed', outcome: 'completed (seen from the chain, after a reconnect)' };
  if (!expected && job.type === 'pull' && chain.length === 1) return { phase: 'completed', outcome: 'completed (seen from the chain)' };
  // Measured with libvirt 9.0: a libvirtd killed while QEMU pivots comes back showing the old
  // chain while QEMU already writes to the new image. After a pivot was asked for, an unchanged
  // chain in libvirt's XML proves nothing.
  if (job.phase === 'pivoting' && expected && same(chain, expected.before)) {
    return {
      phase: 'unknown',
      outcome:
        'ended out of sight after its pivot was asked for: libvirt shows the old chain, but QEMU may already use the new image ' +
        '(libvirt can lose a pivot when its daemon dies during it); keep both images until the domain has been restarted',
    };
  }
  if (expected && same(chain, expected.before)) {
    return { phase: 'unknown', outcome: 'ended out of sight without changing the chain: cancelled or failed, which libvirt cannot tell now' };
  }
  return { phase: 'unknown', outcome: 'ended out of sight; its outcome cannot be known' };
}
