// Jobs Strata did not start (virsh here) are found and tracked as 'external': within a second
// while someone listens to events (the in-memory bridge's listener counts as watching), and at
// once when the core connects to a host that already runs one. They can be steered like others.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { startTestCore } from './core-harness.ts';
import { assertLeftAtReady, engineSuite, jobEvents, liveChain, MiB, smallChain, waitForDomainChanged, waitForEnd, waitForJob } from './engine-harness.ts';
import { TEST_URI, virsh, virshBlockJobInfo } from '../lab/harness.ts';

describe('jobs started outside Strata', { timeout: 120_000 }, () => {
  const t = engineSuite({ labsTogether: true });

  const lab = (ctx: TestContext) => t.lab(ctx, smallChain);
  // 32 MiB for the pulls virsh runs at 1 MiB/s, so they still run after a loaded machine's slowest
  // virsh call or core start (a 3 MiB one once completed before the destroy meant to end it).
  const slowLab = (ctx: TestContext) => t.lab(ctx, { ...smallChain, baseDataBytes: 32 * MiB });

  it("a pull started by virsh appears within a second as an 'external' job, and can be steered", async (ctx) => {
    // The domain starts after the core: the lifecycle event adds it to the disks searched.
    const l = await slowLab(ctx);
    await waitForDomainChanged(t, l.name);
    await virsh(['blockpull', l.name, 'vda', '--bandwidth', '1']);
    const startedAt = Date.now();
    const found = await waitForJob(t, (j) => j.domain === l.name, { timeoutMs: 5_000, intervalMs: 10, what: 'the virsh pull to appear' });
    const after = Date.now() - startedAt;
    assert.ok(after <= 1_000, `found ${after} ms after virsh returned`);
    ctx.diagnostic(`found ${after} ms after virsh returned`);
    assert.equal(found.origin, 'external');
    assert.equal(found.type, 'pull');
    assert.equal(found.phase, 'running');
    assert.equal(found.afterReady, null);

    const listed = await t.client.call('jobs.list', { hostId });
    const mine = listed.find((j) => j.domain === l.name);
    assert.equal(mine?.id, found.id);
    assert.equal(mine?.bandwidthBytesPerSec, MiB, 'the limit virsh set, read back in bytes/s');

    // Strata can steer it: lift the limit, and it completes.
    const faster = await t.client.call('job.setSpeed', { hostId, domain: l.name, disk: 'vda', bandwidthBytesPerSec: 0 });
    assert.equal(faster.origin, 'external');
    const ended = await waitForEnd(t, found.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(l.name), [l.layers[2]]);
    assert.equal(jobEvents(t, l.name).filter((j) => j.origin === 'strata').length, 0, 'never shown as started by Strata');
  });

  it("an active commit started by virsh is shown ready, is not pivoted by Strata, and job.pivot finishes it", async (ctx) => {
    const l = await lab(ctx);
    await waitForDomainChanged(t, l.name);
    await virsh(['blockcommit', l.name, 'vda', '--active']);
    const ready = await waitForJob(t, (j) => j.domain === l.name && j.phase === 'ready', { what: 'the virsh commit to be ready' });
    assert.equal(ready.origin, 'external');
    assert.equal(ready.type, 'active-commit');
    assert.equal(ready.afterReady, null);

    // Nobody asked Strata to pivot: the job stays at ready.
    await assertLeftAtReady(t, { hostId, domain: l.name, disk: 'vda' }, ready.id);
    assert.equal((await virshBlockJobInfo(l.name, 'vda'))['type'], 'Active Block Commit');
    assert.deepEqual(await liveChain(l.name), [...l.layers].reverse());

    await t.client.call('job.pivot', { hostId, domain: l.name, disk: 'vda' });
    const ended = await waitForEnd(t, ready.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(l.name), [l.layers[0]]);
  });

  it('a job already running when the core connects is tracked from the first read', async (ctx) => {
    const l = await slowLab(ctx);
    await virsh(['blockpull', l.name, 'vda', '--bandwidth', '1']);
    const late = await startTestCore({ uri: TEST_URI });
    ctx.after(() => late.close());
    // Read at connection time, before any sweep: jobs.list already has it.
    const listed = await late.client.call('jobs.list', { hostId });
    const job = listed.find((j) => j.domain === l.name);
    assert.ok(job, `jobs.list right after connecting: ${JSON.stringify(listed.map((j) => j.domain))}`);
    assert.equal(job.origin, 'external');
    assert.equal(job.type, 'pull');
    assert.ok(job.end > 1, 'its progress was read');

    await late.client.call('job.abort', { hostId, domain: l.name, disk: 'vda' });
    const ended = await waitForEnd(late, job.id);
    assert.equal(ended.phase, 'cancelled', ended.outcome ?? '');
    assert.deepEqual(await liveChain(l.name), [...l.layers].reverse());
  });

  it('a job whose domain is destroyed under it ends, instead of counting as running forever', async (ctx) => {
    const l = await slowLab(ctx);
    await waitForDomainChanged(t, l.name);
    await virsh(['blockpull', l.name, 'vda', '--bandwidth', '1']);
    const found = await waitForJob(t, (j) => j.domain === l.name, { what: 'the virsh pull to appear' });
    // libvirt sends no block-job event when the domain goes: only its lifecycle event.
    await virsh(['destroy', l.name]);
    const ended = await waitForEnd(t, found.id);
    assert.equal(ended.phase, 'unknown');
    assert.match(ended.outcome ?? '', /can no longer be read/);
    const listed = await t.client.call('jobs.list', { hostId });
    assert.ok(!listed.some((j) => j.domain === l.name && j.phase === 'running'), JSON.stringify(listed));
  });
});
