// The tracker's merging rules with a scripted poll source. A fake is used because the real
// daemon cannot, on demand, lose an end event or report a job from another client at an exact
// moment; the same paths run against real libvirt in test/core.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job } from '../../src/shared/model.ts';
import { JobTracker } from '../../src/main/core/jobs/job-tracker.ts';
import type { RawBlockJob } from '../../src/main/libvirt/types.ts';

function harness(initial: RawBlockJob | null, settle: Job['phase'] = 'completed') {
  let live = initial;
  let now = 1_000;
  const emitted: Job[] = [];
  const ended: Job[] = [];
  const tracker = new JobTracker({
    hostId: 'h',
    poll: async () => live,
    settleVanished: async () => ({ phase: settle, outcome: `${settle} (seen from the chain)` }),
    emit: (j) => emitted.push(j),
    ended: (j) => ended.push(j),
    watched: () => true,
    now: () => now,
    pollIntervalMs: 5,
  });
  return {
    tracker,
    emitted,
    ended,
    set: (j: RawBlockJob | null) => (live = j),
    tick: (ms: number) => (now += ms),
  };
}

const settle = () => new Promise((r) => setTimeout(r, 60));

describe('JobTracker', () => {
  it('tracks a job Strata started, measures its rate, and ends it on the event', async () => {
    const h = harness({ type: 'pull', bandwidthBytesPerSec: 1 << 20, cur: 0, end: 1 << 30 });
    const job = h.tracker.begin('lab', 'vda', 'pull', { bandwidthBytesPerSec: 1 << 20 });
    assert.equal(job.origin, 'strata');
    h.tracker.observe('lab', 'vda', { type: 'pull', bandwidthBytesPerSec: 1 << 20, cur: 0, end: 1 << 30 });
    h.tick(1000);
    h.tracker.observe('lab', 'vda', { type: 'pull', bandwidthBytesPerSec: 1 << 20, cur: 1 << 20, end: 1 << 30 });
    const active = h.tracker.active('lab', 'vda');
    assert.equal(active?.rateBytesPerSec, 1 << 20);
    assert.equal(active?.etaSeconds, 1023);
    h.tracker.notice({ domain: 'lab', disk: 'vda', type: 'pull', status: 'completed' });
    assert.equal(h.tracker.active('lab', 'vda'), undefined);
    assert.equal(h.ended.length, 1);
    assert.equal(h.ended[0]?.phase, 'completed');
    assert.equal(h.tracker.list()[0]?.phase, 'completed');
    h.tracker.dispose();
  });

  it('discovers a job started elsewhere and marks it external', () => {
    const h = harness(null);
    h.tracker.observe('lab', 'vdb', { type: 'copy', bandwidthBytesPerSec: 0, cur: 5, end: 10 });
    assert.equal(h.tracker.active('lab', 'vdb')?.origin, 'external');
    assert.equal(h.tracker.active('lab', 'vdb')?.progress, 0.5);
    h.tracker.dispose();
  });

  it('settles a job that vanished without an event, after a grace period', async () => {
    const h = harness({ type: 'pull', bandwidthBytesPerSec: 0, cur: 1, end: 2 });
    h.tracker.begin('lab', 'vda', 'pull', { bandwidthBytesPerSec: 0 });
    h.set(null);
    await settle();
    assert.equal(h.ended.length, 1);
    assert.equal(h.ended[0]?.outcome, 'completed (seen from the chain)');
    h.tracker.dispose();
  });

  it('ignores a sighting of a job right after its end event (libvirt 9.0 lingering jobs)', () => {
    const h = harness(null);
    h.tracker.begin('lab', 'vda', 'pull', { bandwidthBytesPerSec: 0 });
    h.tracker.notice({ domain: 'lab', disk: 'vda', type: 'pull', status: 'completed' });
    h.tracker.observe('lab', 'vda', { type: 'pull', bandwidthBytesPerSec: 0, cur: 2, end: 2 });
    assert.equal(h.tracker.active('lab', 'vda'), undefined);
    h.tick(5000);
    h.tracker.observe('lab', 'vda', { type: 'pull', bandwidthBytesPerSec: 0, cur: 0, end: 2 });
    assert.equal(h.tracker.active('lab', 'vda')?.origin, 'external');
    h.tracker.dispose();
  });

  it('a copy cancelled after ready left a whole image, though a poll sent before the ready event answered after it', () => {
    const left: { progress: number | null; reachedReady: boolean }[] = [];
    const tracker = new JobTracker({
      hostId: 'h',
      poll: async () => null,
      settleVanished: async () => ({ phase: 'unknown', outcome: '' }),
      emit: () => {},
      ended: () => {},
      leftover: (job, reachedReady) => {
        left.push({ progress: job.progress, reachedReady });
        return null;
      },
      watched: () => false,
    });
    tracker.begin('lab', 'vda', 'copy', { bandwidthBytesPerSec: 0 });
    tracker.notice({ domain: 'lab', disk: 'vda', type: 'copy', status: 'ready' });
    // The poll's answer, read before the ready event: the mirror was not in sync yet.
    tracker.observe('lab', 'vda', { type: 'copy', bandwidthBytesPerSec: 0, cur: 9, end: 10 });
    assert.equal(tracker.active('lab', 'vda')?.progress, 1, 'a ready job stays in sync');
    tracker.aborting('lab', 'vda');
    tracker.notice({ domain: 'lab', disk: 'vda', type: 'copy', status: 'cancelled' });
    assert.deepEqual(left, [{ progress: 1, reachedReady: true }]);
    tracker.dispose();
  });

  it('moves to ready on the ready event and keeps the job', () => {
    const h = harness(null);
    h.tracker.begin('lab', 'vda', 'copy', { bandwidthBytesPerSec: 0 });
    h.tracker.notice({ domain: 'lab', disk: 'vda', type: 'copy', status: 'ready' });
    assert.equal(h.tracker.active('lab', 'vda')?.phase, 'ready');
    h.tracker.dispose();
  });
});
