// The queue and budget rules and the judging of out-of-sight endings, with plain data: the
// real-daemon side of both is in test/core.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job } from '../../src/shared/model.ts';
import type { QueuedJob } from '../../src/main/core/jobs/job-tracker.ts';
import { Scheduler, type SchedulerDeps } from '../../src/main/core/jobs/scheduler.ts';
import { judgeVanished } from '../../src/main/core/jobs/settle.ts';

const MiB = 1 << 20;

function job(domain: string, disk: string, requested = 0, bandwidth = 0): Job {
  return {
    id: `${domain}/${disk}`,
    hostId: 'h',
    domain,
    disk,
    type: 'pull',
    phase: 'running',
    cur: 0,
    end: 0,
    progress: null,
    bandwidthBytesPerSec: bandwidth,
    requestedBandwidthBytesPerSec: requested,
    afterReady: null,
    rateBytesPerSec: null,
    etaSeconds: null,
    startedAt: 0,
    updatedAt: 0,
    endedAt: null,
    origin: 'strata',
    outcome: null,
    leftover: null,
  };
}

function deps(some: Partial<SchedulerDeps>): SchedulerDeps {
  return { running: () => [], starting: () => [], queued: () => [], setSpeed: async () => {}, ...some };
}

describe('Scheduler', () => {
  it('divides the budget evenly, keeping a lower limit a job asked for', () => {
    const s = new Scheduler({ maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 4 * MiB }, deps({ running: () => [] }));
    assert.equal(s.effectiveLimit(0, 2), 2 * MiB);
    assert.equal(s.effectiveLimit(MiB, 2), MiB);
    assert.equal(s.effectiveLimit(8 * MiB, 1), 4 * MiB);
  });

  it('without a budget, a job gets what it asked for', () => {
    const s = new Scheduler({ maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 0 }, deps({ running: () => [] }));
    assert.equal(s.effectiveLimit(0, 5), 0);
    assert.equal(s.effectiveLimit(3 * MiB, 5), 3 * MiB);
  });

  it('re-divides among running jobs, touching only those whose limit changes', async () => {
    const running = [job('a', 'vda', 0, 4 * MiB), job('b', 'vda', MiB, MiB)];
    const set: [string, number][] = [];
    const s = new Scheduler(
      { maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 4 * MiB },
      deps({ running: () => running, setSpeed: async (j, n) => void set.push([j.domain, n]) }),
    );
    await s.rebalance();
    assert.deepEqual(set, [['a', 2 * MiB]]);
  });

  it('without a budget leaves every job’s limit alone; lifting a budget gives limits back', async () => {
    const running = [{ ...job('virsh', 'vda', 3 * MiB, 3 * MiB), origin: 'external' as const }, job('a', 'vda', 0, 0)];
    const set: [string, number][] = [];
    const s = new Scheduler(
      { maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 0 },
      deps({ running: () => running, setSpeed: async (j, n) => void set.push([j.domain, n]) }),
    );
    await s.rebalance();
    assert.deepEqual(set, []);
    await s.setLimits({ maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 2 * MiB });
    await s.rebalance();
    assert.deepEqual(set, [['virsh', MiB], ['a', MiB]]);
    running[0]!.bandwidthBytesPerSec = MiB;
    running[1]!.bandwidthBytesPerSec = MiB;
    set.length = 0;
    await s.setLimits({ maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 0 });
    assert.deepEqual(set, [['virsh', 3 * MiB], ['a', 0]]);
  });

  it('starts queued jobs first come, first served, and says why a job waits', async () => {
    const running = [job('a', 'vda')];
    const started: string[] = [];
    const queue: QueuedJob[] = [];
    const s = new Scheduler({ maxConcurrentJobs: 1, bandwidthBudgetBytesPerSec: 0 }, deps({ running: () => running, queued: () => queue }));
    assert.match(s.whyWaiting('b', 'vda') ?? '', /runs 1 of at most 1 jobs/);
    assert.match(s.whyWaiting('a', 'vda') ?? '', /already has a job/);
    for (const name of ['b', 'c']) {
      queue.push({
        job: { ...job(name, 'vda'), phase: 'queued' },
        start: async () => {
          started.push(name);
          queue.splice(queue.findIndex((e) => e.job.domain === name), 1);
          running.push(job(name, 'vda'));
        },
      });
    }
    running.length = 0;
    assert.match(s.whyWaiting('d', 'vda') ?? '', /2 job\(s\) are waiting ahead of it/, 'a newcomer does not jump the queue');
    await s.pump();
    assert.deepEqual(started, ['b'], 'one place: the first in line starts');
    running.length = 0;
    await s.pump();
    assert.deepEqual(started, ['b', 'c']);
    assert.deepEqual(queue, []);
  });

  it('a start that leaves its job in the queue is not retried in the same pump', async () => {
    let starts = 0;
    const queue: QueuedJob[] = [{ job: { ...job('b', 'vda'), phase: 'queued' }, start: async () => void (starts += 1) }];
    const s = new Scheduler({ maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 0 }, deps({ queued: () => queue }));
    await s.pump();
    assert.equal(starts, 1);
  });
});

describe('judgeVanished', () => {
  const expected = { before: ['/t', '/m', '/b'], after: ['/t'] };
  const j = { phase: 'running' as const, type: 'pull' as const, domain: 'd', disk: 'vda' };
  it('completed when the chain is what the job would make', () => {
    assert.equal(judgeVanished(j, ['/t'], expected).phase, 'completed');
  });
  it('unknown when the chain did not change: cancelled and failed look the same', () => {
    const r = judgeVanished(j, ['/t', '/m', '/b'], expected);
    assert.equal(r.phase, 'unknown');
    assert.match(r.outcome, /cancelled or failed/);
  });
  it('cancelled when Strata had asked for the abort', () => {
    assert.equal(judgeVanished({ ...j, phase: 'aborting' }, ['/t', '/m', '/b'], expected).phase, 'cancelled');
  });
  it('an external pull is judged by the chain alone', () => {
    assert.equal(judgeVanished(j, ['/t'], undefined).phase, 'completed');
    assert.equal(judgeVanished(j, ['/t', '/b'], undefined).phase, 'unknown');
  });
});
