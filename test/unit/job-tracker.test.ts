// The tracker's merging rules with a scripted poll source. A fake is used because the real
// daemon cannot, on demand, lose an end event or report a job from another client at an exact
// moment; the same paths run against real libvirt in test/core.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job, JobTransition } from '../../src/shared/model.ts';
import { JobTracker } from '../../src/main/core/jobs/job-tracker.ts';
import type { RawBlockJob } from '../../src/main/libvirt/types.ts';

function harness(initial: RawBlockJob | null, settle: Job['phase'] = 'completed') {
  let live = initial;
  let now = 1_000;
  const emitted: [Job, JobTransition][] = [];
  const ended: Job[] = [];
  let endedNext: ((job: Job) => void) | null = null;
  // The poll's timer: a round starts when the test fires it, not after real time.
  const due: (() => void)[] = [];
  let polled: (() => void) | null = null;
  const tracker = new JobTracker({
    hostId: 'h',
    poll: async () => {
      queueMicrotask(() => polled?.());
      return live;
    },
    settleVanished: async () => ({ phase: settle, outcome: `${settle} (seen from the chain)` }),
    emit: (j, t) => emitted.push([j, t]),
    ended: (j) => {
      ended.push(j);
      endedNext?.(j);
    },
    watched: () => true,
    now: () => now,
    pollTimer: { set: (fire) => due.push(fire), clear: () => {} },
  });
  return {
    tracker,
    emitted,
    ended,
    set: (j: RawBlockJob | null) => (live = j),
    tick: (ms: number) => (now += ms),
    /** Runs the poll round that is due, and resolves once its answer is taken in. */
    poll: async () => {
      const fire = due.shift();
      assert.ok(fire, 'a poll round is due');
      const answered = new Promise<void>((r) => (polled = r));
      fire();
      await answered;
      await Promise.resolve();
    },
    nextEnd: () => new Promise<Job>((r) => (endedNext = r)),
  };
}

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
    await h.poll();
    assert.equal(h.tracker.active('lab', 'vda')?.progress, 0.5);
    h.set(null);
    await h.poll();
    await h.poll();
    assert.equal(h.ended.length, 0, 'two polls without the job are within the grace');
    const ended = h.nextEnd();
    await h.poll();
    assert.equal((await ended).outcome, 'completed (seen from the chain)');
    assert.equal(h.ended.length, 1);
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

  it('tells each change once, with what happened: appeared, phase, progress, ready, ended', async () => {
    const h = harness({ type: 'copy', bandwidthBytesPerSec: 0, cur: 5, end: 10 });
    h.tracker.request('lab', 'vda', 'copy', { requestedBandwidthBytesPerSec: 0, afterReady: 'wait' });
    h.tracker.begin('lab', 'vda', 'copy', { bandwidthBytesPerSec: 0 });
    await h.poll();
    await h.poll();
    h.tracker.notice({ domain: 'lab', disk: 'vda', type: 'copy', status: 'ready' });
    h.tracker.pivoting('lab', 'vda');
    h.tracker.refused('lab', 'vda');
    h.tracker.pivoting('lab', 'vda');
    h.tracker.notice({ domain: 'lab', disk: 'vda', type: 'copy', status: 'completed' });
    h.tracker.notice({ domain: 'lab', disk: 'vda', type: 'copy', status: 'completed' });
    assert.deepEqual(
      h.emitted.map(([j, t]) => `${t}:${j.phase}`),
      ['appeared:requested', 'phase:running', 'progress:running', 'ready:ready', 'phase:pivoting', 'ready:ready', 'phase:pivoting', 'ended:completed'],
      'a poll that changes nothing says nothing, and the repeated end is not told again',
    );
    h.tracker.dispose();
  });

  it('a job started elsewhere appears with its first sighting, or is told by its ready or its end alone', () => {
    const h = harness(null);
    h.tracker.observe('lab', 'vda', { type: 'pull', bandwidthBytesPerSec: 0, cur: 1, end: 4 });
    h.tracker.notice({ domain: 'lab', disk: 'vdb', type: 'copy', status: 'ready' });
    h.tracker.notice({ domain: 'lab', disk: 'vdc', type: 'pull', status: 'completed' });
    assert.deepEqual(
      h.emitted.map(([j, t]) => `${j.disk} ${t}:${j.phase}:${j.origin}`),
      ['vda appeared:running:external', 'vdb ready:ready:external', 'vdc ended:completed:external'],
    );
    h.tracker.dispose();
  });

  it('an ended job amended: the disk’s last ending shows it, and it is told as amended', async () => {
    const h = harness(null);
    h.tracker.begin('lab', 'vda', 'copy', { bandwidthBytesPerSec: 0 });
    h.tracker.notice({ domain: 'lab', disk: 'vda', type: 'copy', status: 'failed' });
    const ended = h.tracker.list()[0]!;
    await h.tracker.amend({ ...ended, outcome: 'amended' });
    assert.equal(h.tracker.list()[0]?.outcome, 'amended');
    assert.deepEqual(h.emitted.at(-1)?.[1], 'amended');
    h.tracker.dispose();
  });

  it('the queue dropped as Strata quits: each waiting job ends cancelled, told and with the reason, and none starts', () => {
    const h = harness(null);
    h.tracker.begin('lab', 'vda', 'pull', { bandwidthBytesPerSec: 0 });
    let started = 0;
    const start = async (): Promise<void> => void started++;
    h.tracker.enqueue('lab', 'vdb', 'copy', { requestedBandwidthBytesPerSec: 0 }, start);
    h.tracker.enqueue('lab', 'vdc', 'commit', { requestedBandwidthBytesPerSec: 0 }, start);
    h.tracker.dropQueued('not started: Strata quit');
    assert.deepEqual(h.tracker.queued(), []);
    assert.deepEqual(h.ended.map((j) => `${j.disk} ${j.phase} ${j.outcome}`), ['vdb cancelled not started: Strata quit', 'vdc cancelled not started: Strata quit']);
    assert.deepEqual(h.emitted.filter(([, t]) => t === 'ended').map(([j]) => j.disk), ['vdb', 'vdc']);
    assert.equal(h.tracker.active('lab', 'vda')?.phase, 'running', 'a running job is not the queue');
    assert.equal(started, 0);
    h.tracker.dispose();
  });
});
