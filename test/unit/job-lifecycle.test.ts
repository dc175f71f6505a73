// The one job lifecycle: the transition table, and the tracker moving every job through it. A
// scripted source stands in for libvirt because the real daemon cannot, on demand, refuse a
// pivot or send an end event at an exact moment; test/core runs the same paths for real.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allowedTransitions, assertMove } from '../../src/main/core/jobs/lifecycle.ts';
import { JobTracker } from '../../src/main/core/jobs/job-tracker.ts';
import { finishedPhases, type Job, type JobPhase } from '../../src/shared/model.ts';

function harness() {
  const emitted: Job[] = [];
  const recorded: Job[] = [];
  const tracker = new JobTracker({
    hostId: 'h',
    poll: async () => null,
    settleVanished: async () => ({ phase: 'unknown', outcome: 'unknown' }),
    emit: (j) => emitted.push(j),
    record: (j) => recorded.push(j),
    ended: () => {},
    watched: () => false,
  });
  return { tracker, emitted, recorded };
}

const running = { type: 'copy' as const, bandwidthBytesPerSec: 0, cur: 1, end: 10 };

describe('the job lifecycle table', () => {
  it('ends are final, and every phase can reach an end', () => {
    for (const end of finishedPhases) assert.deepEqual(allowedTransitions[end], [], `${end} is final`);
    const reachesEnd = (from: JobPhase, seen = new Set<JobPhase>()): boolean =>
      finishedPhases.includes(from) || (!seen.has(from) && allowedTransitions[from].some((to) => reachesEnd(to, new Set([...seen, from]))));
    for (const phase of Object.keys(allowedTransitions) as JobPhase[]) assert.ok(reachesEnd(phase), `${phase} can end`);
  });

  it('refuses what libvirt cannot do: a pivot before ready, a queued job running without a request', () => {
    assert.throws(() => assertMove('running', 'pivoting', 't'), /illegal job transition running → pivoting/);
    assert.throws(() => assertMove('queued', 'running', 't'), /illegal job transition queued → running/);
    assert.throws(() => assertMove('completed', 'running', 't'), /illegal/);
    assert.doesNotThrow(() => assertMove('ready', 'pivoting', 't'));
  });
});

describe('JobTracker moves every job through the table', () => {
  it('a pivot asked of a job that is not ready is a bug, thrown at once', () => {
    const h = harness();
    h.tracker.observe('d', 'vda', running);
    assert.throws(() => h.tracker.pivoting('d', 'vda'), /running → pivoting/);
    assert.equal(h.tracker.active('d', 'vda')?.phase, 'running', 'the job is unchanged');
    h.tracker.dispose();
  });

  it('queued → cancelled before it started: recorded once, and gone from the queue', () => {
    const h = harness();
    const job = h.tracker.enqueue('d', 'vda', 'pull', { requestedBandwidthBytesPerSec: 0 }, async () => {});
    assert.equal(job.phase, 'queued');
    assert.equal(h.tracker.occupying('d', 'vda')?.id, job.id);
    const cancelled = h.tracker.cancelQueued('d', 'vda');
    assert.equal(cancelled?.phase, 'cancelled');
    assert.equal(cancelled?.outcome, 'removed from the queue before it started');
    assert.deepEqual(h.tracker.queued(), []);
    assert.deepEqual(h.recorded.map((j) => [j.id, j.phase]), [[job.id, 'cancelled']]);
    assert.equal(h.tracker.cancelQueued('d', 'vda'), undefined);
    h.tracker.dispose();
  });

  it('queued → requested keeps the id it was announced with', () => {
    const h = harness();
    const job = h.tracker.enqueue('d', 'vda', 'pull', { requestedBandwidthBytesPerSec: 5 }, async () => {});
    const requested = h.tracker.request('d', 'vda', 'pull', { requestedBandwidthBytesPerSec: 5 }, job.id);
    assert.equal(requested.id, job.id);
    assert.equal(requested.phase, 'requested');
    assert.deepEqual(h.tracker.queued(), []);
    const begun = h.tracker.begin('d', 'vda', 'pull', { bandwidthBytesPerSec: 5 });
    assert.equal(begun.id, job.id);
    assert.equal(begun.phase, 'running');
    h.tracker.dispose();
  });

  it('a refused abort or pivot puts the job back where it was', () => {
    const h = harness();
    h.tracker.observe('d', 'vda', running);
    h.tracker.aborting('d', 'vda');
    h.tracker.refused('d', 'vda');
    assert.equal(h.tracker.active('d', 'vda')?.phase, 'running');
    h.tracker.notice({ domain: 'd', disk: 'vda', type: 'copy', status: 'ready' });
    h.tracker.pivoting('d', 'vda');
    h.tracker.refused('d', 'vda');
    assert.equal(h.tracker.active('d', 'vda')?.phase, 'ready');
    h.tracker.dispose();
  });

  it('a pivot whose call died with the connection is ready again when the reconnect finds the mirror ready', () => {
    const h = harness();
    h.tracker.observe('d', 'vda', running);
    h.tracker.notice({ domain: 'd', disk: 'vda', type: 'copy', status: 'ready' });
    h.tracker.pivoting('d', 'vda');
    h.tracker.markReady({ domain: 'd', disk: 'vda' });
    assert.equal(h.tracker.active('d', 'vda')?.phase, 'pivoting', 'a ready seen during a pivot changes nothing');
    h.tracker.markReady({ domain: 'd', disk: 'vda' }, { reconnected: true });
    assert.equal(h.tracker.active('d', 'vda')?.phase, 'ready');
    h.tracker.dispose();
  });

  it('keeping the chain at ready ends completed, not cancelled; a repeated end event changes nothing', () => {
    const h = harness();
    h.tracker.observe('d', 'vda', running);
    h.tracker.notice({ domain: 'd', disk: 'vda', type: 'copy', status: 'ready' });
    h.tracker.aborting('d', 'vda', { keeping: true });
    h.tracker.notice({ domain: 'd', disk: 'vda', type: 'copy', status: 'cancelled' });
    h.tracker.notice({ domain: 'd', disk: 'vda', type: 'copy', status: 'cancelled' });
    assert.deepEqual(
      h.recorded.map((j) => [j.phase, j.outcome]),
      [['completed', 'completed: the disk kept its current chain (no pivot)']],
    );
    h.tracker.dispose();
  });

  it('the phases a job showed are all steps of the table', () => {
    const h = harness();
    const job = h.tracker.request('d', 'vda', 'copy', { requestedBandwidthBytesPerSec: 0, afterReady: 'pivot' });
    h.tracker.begin('d', 'vda', 'copy', { bandwidthBytesPerSec: 0 });
    h.tracker.notice({ domain: 'd', disk: 'vda', type: 'copy', status: 'ready' });
    h.tracker.pivoting('d', 'vda');
    h.tracker.notice({ domain: 'd', disk: 'vda', type: 'copy', status: 'completed' });
    const phases = h.emitted.filter((j) => j.id === job.id).map((j) => j.phase);
    assert.deepEqual(phases, ['requested', 'running', 'ready', 'pivoting', 'completed']);
    for (let i = 1; i < phases.length; i++) assert.doesNotThrow(() => assertMove(phases[i - 1]!, phases[i]!, 'shown'));
    assert.equal(h.recorded[0]?.outcome, 'completed: the disk now uses the new image');
    h.tracker.dispose();
  });
});
