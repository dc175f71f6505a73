// The taskbar progress from the jobs: the rule in src/main/desktop/progress.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job, JobPhase } from '../../src/shared/model.ts';
import { aggregateProgress, indeterminateProgress, LiveJobs, noProgress } from '../../src/main/desktop/progress.ts';

function job(id: string, phase: JobPhase, cur: number, end: number, startedAt = 1): Job {
  return {
    id, hostId: 'default', domain: 'web', disk: 'vda', type: 'pull', phase, cur, end,
    progress: end > 1 ? cur / end : null, bandwidthBytesPerSec: 0, requestedBandwidthBytesPerSec: 0,
    afterReady: null, rateBytesPerSec: null, etaSeconds: null, startedAt, updatedAt: startedAt,
    endedAt: null, origin: 'strata', outcome: null, leftover: null,
  };
}

describe('aggregateProgress', () => {
  it('is -1 (no bar) when nothing runs: no jobs, only queued ones, only ended ones', () => {
    assert.equal(aggregateProgress([]), noProgress);
    assert.equal(aggregateProgress([job('a', 'queued', 0, 1)]), noProgress);
    for (const phase of ['completed', 'failed', 'cancelled', 'unknown'] as const) {
      assert.equal(aggregateProgress([job('a', phase, 10, 10)]), noProgress, phase);
    }
  });

  it('is one job’s own ratio', () => {
    assert.equal(aggregateProgress([job('a', 'running', 25, 100)]), 0.25);
  });

  it('weights jobs by their size (end): a big job half done outweighs a small one finished', () => {
    const p = aggregateProgress([job('big', 'running', 450, 900), job('small', 'running', 100, 100)]);
    assert.equal(p, 550 / 1000);
    assert.notEqual(p, (0.5 + 1) / 2, 'not the mean of the ratios');
  });

  it('leaves jobs of unknown progress out of the sum while others are known', () => {
    assert.equal(aggregateProgress([job('a', 'running', 30, 60), job('b', 'requested', 0, 1), job('c', 'running', 0, 0)]), 0.5);
  });

  it('is indeterminate (2) when only jobs of unknown progress run', () => {
    assert.equal(aggregateProgress([job('a', 'requested', 0, 1)]), indeterminateProgress);
    assert.equal(aggregateProgress([job('a', 'running', 0, 1), job('b', 'queued', 5, 10)]), indeterminateProgress);
  });

  it('counts ready, pivoting and aborting jobs (still running in QEMU); a ready mirror is full', () => {
    assert.equal(aggregateProgress([job('a', 'ready', 100, 100), job('b', 'running', 0, 100)]), 0.5);
    assert.equal(aggregateProgress([job('a', 'aborting', 10, 100)]), 0.1);
    assert.equal(aggregateProgress([job('a', 'pivoting', 100, 100)]), 1);
  });

  it('stays within 0..1 when libvirt reports cur beyond end or below 0', () => {
    assert.equal(aggregateProgress([job('a', 'running', 150, 100)]), 1);
    assert.equal(aggregateProgress([job('a', 'running', -5, 100)]), 0);
  });
});

describe('LiveJobs', () => {
  it('follows the job events: a job counts until it ends', () => {
    const live = new LiveJobs();
    live.update(job('a', 'running', 10, 100, 2));
    live.update(job('b', 'queued', 0, 1, 1));
    assert.deepEqual(live.list().map((j) => j.id), ['b', 'a'], 'oldest first');
    assert.equal(live.progress(), 0.1);
    live.update(job('a', 'running', 60, 100, 2));
    assert.equal(live.progress(), 0.6);
    live.update(job('a', 'completed', 100, 100, 2));
    assert.deepEqual(live.list().map((j) => j.id), ['b']);
    assert.equal(live.progress(), noProgress);
  });
});
