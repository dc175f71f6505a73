// A job Strata starts can be ready, or over, before the call that starts it returns: libvirt's
// event then comes before JobTracker.begin(). Seen on real QEMU (an active commit of empty layers
// with afterReady 'pivot': the ready event made an 'external' job, begin() replaced it with a
// 'running' one, and the job waited at ready for ever). The order cannot be forced on a real
// daemon, so it is scripted here; test/core/10-operations.test.ts runs such jobs for real.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job } from '../../src/shared/model.ts';
import { JobTracker } from '../../src/main/core/jobs/job-tracker.ts';

function harness() {
  const emitted: Job[] = [];
  const ended: Job[] = [];
  const ready: Job[] = [];
  const tracker = new JobTracker({
    hostId: 'h',
    poll: async () => null,
    settleVanished: async () => ({ phase: 'unknown', outcome: 'unknown' }),
    emit: (j) => emitted.push(j),
    ended: (j) => ended.push(j),
    ready: (j) => ready.push(j),
    watched: () => false,
  });
  return { tracker, emitted, ended, ready };
}

describe('JobTracker: events that come before begin()', () => {
  it('a ready event before begin() makes Strata’s job ready (and asks the host to act on it)', () => {
    const h = harness();
    const requested = h.tracker.request('lab', 'vda', 'active-commit', { requestedBandwidthBytesPerSec: 0, afterReady: 'pivot' });
    assert.equal(requested.phase, 'requested');
    h.tracker.notice({ domain: 'lab', disk: 'vda', type: 'active-commit', status: 'ready' });
    h.tracker.observe('lab', 'vda', { type: 'active-commit', bandwidthBytesPerSec: 0, cur: 1, end: 1 });
    assert.ok(h.emitted.every((j) => j.origin === 'strata' && j.id === requested.id), 'no external job is made of it');
    const job = h.tracker.begin('lab', 'vda', 'active-commit', { bandwidthBytesPerSec: 0, afterReady: 'pivot' });
    assert.equal(job.phase, 'ready');
    assert.equal(job.origin, 'strata');
    assert.deepEqual(
      h.ready.map((j) => [j.id, j.afterReady]),
      [[job.id, 'pivot']],
    );
    assert.ok(h.emitted.every((j) => j.origin === 'strata' && j.id === job.id));
    h.tracker.dispose();
  });

  it('an end event before begin() ends Strata’s job with it, once', () => {
    const h = harness();
    h.tracker.request('lab', 'vda', 'pull', { requestedBandwidthBytesPerSec: 0 });
    h.tracker.notice({ domain: 'lab', disk: 'vda', type: 'pull', status: 'completed' });
    const job = h.tracker.begin('lab', 'vda', 'pull', { bandwidthBytesPerSec: 0 });
    assert.equal(job.phase, 'completed');
    assert.deepEqual(
      h.ended.map((j) => [j.id, j.origin, j.phase]),
      [[job.id, 'strata', 'completed']],
    );
    assert.equal(h.tracker.active('lab', 'vda'), undefined);
    h.tracker.dispose();
  });

  it('a start that failed ends the requested job failed, and later events are another client’s', () => {
    const h = harness();
    const job = h.tracker.request('lab', 'vda', 'pull', { requestedBandwidthBytesPerSec: 0 });
    h.tracker.fail(job.id, 'could not start: no such disk');
    assert.deepEqual(
      h.ended.map((j) => [j.id, j.phase, j.outcome]),
      [[job.id, 'failed', 'could not start: no such disk']],
    );
    h.tracker.observe('lab', 'vda', { type: 'pull', bandwidthBytesPerSec: 0, cur: 1, end: 10 });
    assert.equal(h.tracker.active('lab', 'vda')?.origin, 'external');
    h.tracker.dispose();
  });
});
