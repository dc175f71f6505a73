// A host's queue and bandwidth budget on real QEMU: with at most one job at a time a second job
// waits, queued, and starts by itself when the first ends (or is refused, if so asked), or is
// dropped, recorded as never started, when Strata quits before its turn; a budget
// is split evenly between the running jobs, which really run at their share, and handed whole to
// the one left when the other ends.
//
// The host counts every job libvirt runs on it, including ones it did not start: a test running
// jobs on the same daemon at the same time would change the counts seen here.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { isFinished, type Job } from '../../src/shared/model.ts';
import { startTestCore } from './core-harness.ts';
import { copiedMore, engineSuite, jobEvents, liveChain, measureRates, MiB, rejection, smallChain, waitForEnd, waitForJob } from './engine-harness.ts';
import { TEST_URI, virshBlockJobInfo, waitFor, type TestLabOptions } from '../lab/harness.ts';

describe('the per-host queue and bandwidth budget', { timeout: 300_000 }, () => {
  const t = engineSuite();

  const labs = (ctx: TestContext, n: number, options: TestLabOptions) =>
    Promise.all(Array.from({ length: n }, (_, i) => t.lab(ctx, { ...options, tag: `${ctx.name.slice(0, 20)}-${i}` })));
  const ref = (domain: string) => ({ hostId, domain, disk: 'vda' });

  // Jobs of other tests on the same daemon count too: wait until the host runs none.
  const quiet = async (ctx: TestContext) => {
    const others = async () => (await t.client.call('jobs.list', { hostId })).filter((j) => !isFinished(j) && j.phase !== 'queued');
    const first = await others();
    if (first.length > 0) ctx.diagnostic(`waiting for jobs of others to end: ${first.map((j) => `${j.domain} (${j.type})`).join(', ')}`);
    await waitFor(async () => (await others()).length === 0, { timeoutMs: 90_000, intervalMs: 250, what: 'the host to run no other job' });
  };

  it('maxConcurrentJobs 1: a second job is refused or queued, and the queued one starts when the first ends', async (ctx) => {
    const host = await t.client.call('hosts.setLimits', { hostId, maxConcurrentJobs: 1, bandwidthBudgetBytesPerSec: 0 });
    ctx.after(() => t.client.call('hosts.setLimits', { hostId, maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 0 }));
    assert.deepEqual(host.limits, { maxConcurrentJobs: 1, bandwidthBudgetBytesPerSec: 0 });
    const [a, b, c] = await labs(ctx, 3, smallChain);
    assert.ok(a && b && c);
    await quiet(ctx);

    const first = await t.client.call('job.start', { ...ref(a.name), operation: { kind: 'pull' }, bandwidthBytesPerSec: MiB, whenBusy: 'queue' });
    assert.equal(first.phase, 'running');

    const refused = await rejection(t.client.call('job.start', { ...ref(b.name), operation: { kind: 'pull' }, whenBusy: 'refuse' }));
    assert.equal(refused.kind, 'conflict');
    assert.match(refused.message, /Not started: the host already runs 1 of at most 1 jobs/);
    assert.match(refused.hint ?? '', /whenBusy: "queue"/);

    const second = await t.client.call('job.start', { ...ref(b.name), operation: { kind: 'pull' }, whenBusy: 'queue' });
    assert.equal(second.phase, 'queued');
    assert.equal(second.type, 'pull');
    const third = await t.client.call('job.start', { ...ref(c.name), operation: { kind: 'pull' }, whenBusy: 'queue' });
    assert.equal(third.phase, 'queued');
    const listed = await t.client.call('jobs.list', { hostId });
    assert.deepEqual(
      listed.filter((j) => [a.name, b.name, c.name].includes(j.domain)).map((j) => [j.domain, j.phase]),
      [
        [a.name, 'running'],
        [b.name, 'queued'],
        [c.name, 'queued'],
      ],
    );
    assert.deepEqual(await virshBlockJobInfo(b.name, 'vda'), {}, 'a queued job has not started in libvirt');

    // A queued job can be taken out of the queue; it never starts.
    const removed = await t.client.call('job.abort', ref(c.name));
    assert.equal(removed.phase, 'cancelled');
    assert.match(removed.outcome ?? '', /removed from the queue/);

    // The first ends (its limit lifted), and the queued one starts by itself, under its own id.
    await t.client.call('job.setSpeed', { ...ref(a.name), bandwidthBytesPerSec: 0 });
    const firstEnded = await waitForEnd(t, first.id);
    assert.equal(firstEnded.phase, 'completed', firstEnded.outcome ?? '');
    const started = await waitForJob(t, (j) => j.id === second.id && j.phase !== 'queued', { what: 'the queued job to start' });
    assert.ok(started.updatedAt >= (firstEnded.endedAt ?? Infinity), 'it started after the first ended');
    const secondEnded = await waitForEnd(t, second.id);
    assert.equal(secondEnded.phase, 'completed', secondEnded.outcome ?? '');
    assert.deepEqual(await liveChain(b.name), [b.layers[2]]);
    assert.deepEqual(await liveChain(c.name), [...c.layers].reverse(), 'the removed job never ran');
    assert.equal(jobEvents(t, c.name).at(-1)?.phase, 'cancelled');
  });

  it('a quit drops the queue: the queued job is recorded as never started and never reaches libvirt; the running one goes on there', async (ctx) => {
    // 32 MiB at 1 MiB/s: still running in libvirt well after the quit.
    const [a, b] = await labs(ctx, 2, { ...smallChain, baseDataBytes: 32 * MiB });
    assert.ok(a && b);
    await quiet(ctx);
    // A Strata of its own, to quit: the suite's goes on for the other tests.
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-data-'));
    ctx.after(() => rm(dataDir, { recursive: true, force: true }));
    const quitting = await startTestCore({ uri: TEST_URI, dataDir });
    ctx.after(() => quitting.close());
    await quitting.client.call('hosts.setLimits', { hostId, maxConcurrentJobs: 1, bandwidthBudgetBytesPerSec: 0 });
    const first = await quitting.client.call('job.start', { ...ref(a.name), operation: { kind: 'pull' }, bandwidthBytesPerSec: MiB, whenBusy: 'queue' });
    assert.equal(first.phase, 'running');
    const second = await quitting.client.call('job.start', { ...ref(b.name), operation: { kind: 'pull' }, whenBusy: 'queue' });
    assert.equal(second.phase, 'queued');

    await quitting.close();
    const history = JSON.parse(await readFile(join(dataDir, 'history.json'), 'utf8')) as { jobs: Job[] };
    const dropped = history.jobs.find((j) => j.id === second.id);
    assert.equal(dropped?.phase, 'cancelled', JSON.stringify(dropped));
    assert.equal(dropped?.outcome, 'not started: Strata quit while it waited in the queue');
    assert.equal(history.jobs.find((j) => j.id === first.id), undefined, 'the running pull did not end with the quit');
    assert.deepEqual(await virshBlockJobInfo(b.name, 'vda'), {}, 'the dropped job never reached libvirt');
    assert.equal((await virshBlockJobInfo(a.name, 'vda'))['type'], 'Block Pull', 'the running pull goes on in libvirt');
  });

  it('a 4 MiB/s budget: two unlimited pulls get 2 MiB/s each and run at it; the one left then gets 4 MiB/s', async (ctx) => {
    const budget = 4 * MiB;
    await t.client.call('hosts.setLimits', { hostId, maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: budget });
    ctx.after(() => t.client.call('hosts.setLimits', { hostId, maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 0 }));
    // 64 MiB of written data at the start of the disk: every byte the pulls copy while measured
    // is real data, throttled (QEMU skips unallocated regions at full speed).
    const [x, y] = await labs(ctx, 2, { virtualSize: 128 * MiB, baseDataBytes: 64 * MiB, overlayDataBytes: MiB });
    assert.ok(x && y);
    await quiet(ctx);
    const cur = async (domain: string) => Number((await virshBlockJobInfo(domain, 'vda'))['cur']);
    const limit = async (domain: string) => Number((await virshBlockJobInfo(domain, 'vda'))['bandwidth']);

    const jobX = await t.client.call('job.start', { ...ref(x.name), operation: { kind: 'pull' } });
    assert.equal(jobX.bandwidthBytesPerSec, budget, 'alone, it gets the whole budget');
    assert.equal(jobX.requestedBandwidthBytesPerSec, 0);
    const jobY = await t.client.call('job.start', { ...ref(y.name), operation: { kind: 'pull' } });
    assert.equal(jobY.bandwidthBytesPerSec, budget / 2);
    assert.deepEqual([await limit(x.name), await limit(y.name)], [budget / 2, budget / 2], 'libvirt runs each at half');
    const listed = await t.client.call('jobs.list', { hostId });
    assert.deepEqual(
      listed.filter((j) => j.domain === x.name || j.domain === y.name).map((j) => j.bandwidthBytesPerSec),
      [budget / 2, budget / 2],
    );

    // Measured once each has copied a second's worth at its share, not from the instant the limits changed.
    await copiedMore([x.name, y.name], budget / 2, cur);
    const shared = await measureRates([x.name, y.name], 6_000, cur);
    ctx.diagnostic(`shared: ${shared.map((r) => (r / MiB).toFixed(2)).join(', ')} MiB/s`);
    for (const rate of shared) assert.ok(Math.abs(rate - budget / 2) <= 0.1 * (budget / 2), `rate ${(rate / MiB).toFixed(2)} MiB/s, expected 2 ± 10%`);
    const reported = jobEvents(t, y.name).at(-1)?.rateBytesPerSec ?? 0;
    ctx.diagnostic(`Job.rateBytesPerSec of ${y.name}: ${(reported / MiB).toFixed(2)} MiB/s`);

    await t.client.call('job.abort', ref(x.name));
    assert.equal((await waitForEnd(t, jobX.id)).phase, 'cancelled');
    await waitFor(async () => (await limit(y.name)) === budget, { what: 'the remaining job to get the whole budget' });
    await waitForJob(t, (j) => j.id === jobY.id && j.bandwidthBytesPerSec === budget, { what: 'a job event with the new limit' });

    await copiedMore([y.name], budget, cur);
    const [alone] = await measureRates([y.name], 5_000, cur);
    ctx.diagnostic(`alone: ${((alone ?? 0) / MiB).toFixed(2)} MiB/s`);
    assert.ok(alone !== undefined && Math.abs(alone - budget) <= 0.1 * budget, `rate ${((alone ?? 0) / MiB).toFixed(2)} MiB/s, expected 4 ± 10%`);
    assert.ok(Number((await virshBlockJobInfo(y.name, 'vda'))['cur']) < 64 * MiB, 'measured within the written data');

    await t.client.call('job.abort', ref(y.name));
    assert.equal((await waitForEnd(t, jobY.id)).phase, 'cancelled');
  });
});
