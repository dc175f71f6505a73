// Every operation through the contract, against real libvirtd + QEMU: `operation.preview`, then
// `job.start` of the same operation, and after each completed job the real chain (virsh dumpxml)
// equals the preview's `after`. Layers are named by the index `domain.get` reports.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { runTool } from '../../src/main/core/lab/images.ts';
import { assertLeftAtReady, diskOf, engineSuite, jobEvents, layerIndexes, liveChain, MiB, missingAfterStop, paths, previewAndStart, rejection, smallChain, waitForEnd, waitForJob } from './engine-harness.ts';
import { virshBlockJobInfo, type TestLabOptions } from '../lab/harness.ts';

describe('operations: preview, then job.start, on real QEMU', { timeout: 180_000 }, () => {
  const t = engineSuite({ labsTogether: true });

  const lab = (ctx: TestContext, options: TestLabOptions = {}) => t.lab(ctx, { ...smallChain, ...options });
  const refOf = (domain: string) => ({ hostId, domain, disk: 'vda' });

  it('partial pull down to a middle layer: the layers above it leave, the chain below stays', async (ctx) => {
    const l = await lab(ctx, { layers: 4 });
    const ref = refOf(l.name);
    const [active, upper, lower, base] = await layerIndexes(t.client, hostId, l.name);
    assert.ok(active !== undefined && upper !== undefined && lower !== undefined && base !== undefined);

    // The layer right under the active one is already its backing image: nothing to pull.
    const nothing = await rejection(t.client.call('operation.preview', { ...ref, operation: { kind: 'pull', base: upper } }));
    assert.equal(nothing.kind, 'conflict');
    assert.match(nothing.message, /nothing to pull/);

    const { preview, job } = await previewAndStart(t.client, ref, { kind: 'pull', base: lower });
    assert.deepEqual(paths(preview.before), [...l.layers].reverse());
    assert.deepEqual(paths(preview.after), [l.layers[3], l.layers[1], l.layers[0]]);
    assert.deepEqual(paths(preview.unused), [l.layers[2]]);
    assert.deepEqual(preview.needs, []);
    assert.equal(job.type, 'pull');
    assert.equal(job.origin, 'strata');

    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(l.name), paths(preview.after));
    // The active layer now holds the pulled layer's data; the chain below still serves the rest.
    assert.deepEqual(await missingAfterStop(l, l.layers[3]!), []);
  });

  it('inactive commit of a middle layer: refused without drop-layers (naming the layer), run with it', async (ctx) => {
    const l = await lab(ctx);
    const ref = refOf(l.name);
    const [, middle] = await layerIndexes(t.client, hostId, l.name);
    assert.ok(middle !== undefined);
    const operation = { kind: 'commit', top: middle } as const;

    const preview = await t.client.call('operation.preview', { ...ref, operation });
    assert.deepEqual(preview.needs, ['drop-layers']);
    assert.deepEqual(paths(preview.unused), [l.layers[1]]);
    assert.deepEqual(paths(preview.after), [l.layers[2], l.layers[0]]);

    const refused = await rejection(t.client.call('job.start', { ...ref, operation }));
    assert.equal(refused.kind, 'conflict');
    assert.match(refused.message, /1 layer leave the chain/);
    assert.ok(refused.message.includes(l.layers[1]!), `the refusal names the layer: ${refused.message}`);
    assert.match(refused.hint ?? '', /drop-layers/);
    assert.deepEqual(await virshBlockJobInfo(l.name, 'vda'), {}, 'nothing was started');

    const job = await t.client.call('job.start', { ...ref, operation, confirm: ['drop-layers'] });
    assert.equal(job.type, 'commit');
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(l.name), paths(preview.after));
    assert.deepEqual(await missingAfterStop(l, l.layers[2]!), []);
  });

  it("active commit with afterReady 'pivot' completes by itself on the previewed chain", async (ctx) => {
    const l = await lab(ctx);
    const ref = refOf(l.name);
    const { preview, job } = await previewAndStart(t.client, ref, { kind: 'commit', afterReady: 'pivot' }, { confirm: ['drop-layers'] });
    assert.deepEqual(paths(preview.after), [l.layers[0]]);
    assert.deepEqual(paths(preview.unused), [l.layers[2], l.layers[1]]);
    assert.equal(job.type, 'active-commit');
    assert.equal(job.afterReady, 'pivot');

    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.match(ended.outcome ?? '', /new image/);
    assert.deepEqual(await liveChain(l.name), paths(preview.after));
    assert.deepEqual(await missingAfterStop(l, l.layers[0]!), []);
  });

  it("active commits ready at once (empty top layers) still pivot by themselves, as Strata's own jobs", async (ctx) => {
    // Ready can come before the call that starts the job returns: its event must not be lost.
    const labs = await Promise.all([1, 2].map((n) => lab(ctx, { baseDataBytes: 0, overlayDataBytes: 0, tag: `instant-ready-${n}` })));
    await Promise.all(
      labs.map(async (l) => {
        const ref = refOf(l.name);
        const { preview, job } = await previewAndStart(t.client, ref, { kind: 'commit', afterReady: 'pivot' }, { confirm: ['drop-layers'] });
        const ended = await waitForEnd(t, job.id, { timeoutMs: 15_000 });
        assert.equal(ended.phase, 'completed', ended.outcome ?? '');
        assert.deepEqual(await liveChain(l.name), paths(preview.after));
        const events = jobEvents(t, l.name);
        assert.ok(
          events.every((j) => j.origin === 'strata' && j.id === job.id),
          `only Strata's job, under one id: ${JSON.stringify(events.map((j) => [j.origin, j.phase]))}`,
        );
      }),
    );
  });

  it("active commit with afterReady 'wait': job.pivot is refused before ready, and works after", async (ctx) => {
    const l = await lab(ctx);
    const ref = refOf(l.name);
    const { preview, job } = await previewAndStart(
      t.client,
      ref,
      { kind: 'commit', afterReady: 'wait' },
      { confirm: ['drop-layers'], bandwidthBytesPerSec: MiB / 8 },
    );
    assert.ok(preview.warnings.some((w) => /waits at ready/.test(w)));
    assert.equal(job.phase, 'running');

    const early = await rejection(t.client.call('job.pivot', ref));
    assert.equal(early.kind, 'conflict');
    assert.match(early.message, /not ready yet/);
    assert.match(early.hint ?? '', /ready/);
    assert.equal((await virshBlockJobInfo(l.name, 'vda'))['type'], 'Active Block Commit', 'the refused pivot left the job running');

    await t.client.call('job.setSpeed', { ...ref, bandwidthBytesPerSec: 0 });
    await waitForJob(t, (j) => j.id === job.id && j.phase === 'ready', { what: 'the commit to be ready' });
    // It waits at ready: nothing pivots by itself.
    await assertLeftAtReady(t, ref, job.id);
    assert.equal((await virshBlockJobInfo(l.name, 'vda'))['type'], 'Active Block Commit');
    assert.deepEqual(await liveChain(l.name), [...l.layers].reverse());

    const pivoting = await t.client.call('job.pivot', ref);
    assert.equal(pivoting.phase, 'pivoting');
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(l.name), paths(preview.after));
  });

  it("copy to a new file with afterReady 'pivot': the disk ends on the copy", async (ctx) => {
    const l = await lab(ctx);
    const ref = refOf(l.name);
    const destination = join(l.dir, 'copy.qcow2');
    const { preview, job } = await previewAndStart(t.client, ref, { kind: 'copy', destination, afterReady: 'pivot' });
    assert.deepEqual(preview.created, { path: destination, format: 'qcow2' });
    assert.deepEqual(paths(preview.after), [destination]);
    assert.deepEqual(preview.needs, []);
    assert.equal(job.type, 'copy');

    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.match(ended.outcome ?? '', /new image/);
    assert.deepEqual(await liveChain(l.name), paths(preview.after));
    assert.deepEqual(await missingAfterStop(l, destination), []);
  });

  it('a copy aborted while ready ends cancelled and leaves the chain as it was', async (ctx) => {
    const l = await lab(ctx);
    const ref = refOf(l.name);
    const destination = join(l.dir, 'abandoned.qcow2');
    const { job } = await previewAndStart(t.client, ref, { kind: 'copy', destination, afterReady: 'wait' });
    await waitForJob(t, (j) => j.id === job.id && j.phase === 'ready', { what: 'the copy to be ready' });

    const aborting = await t.client.call('job.abort', ref);
    assert.equal(aborting.phase, 'aborting');
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'cancelled', ended.outcome ?? '');
    assert.deepEqual(await liveChain(l.name), [...l.layers].reverse());
    assert.deepEqual(await virshBlockJobInfo(l.name, 'vda'), {});
  });

  it('a copy onto an existing file is refused unless reuseExisting and confirmed', async (ctx) => {
    const l = await lab(ctx);
    const ref = refOf(l.name);
    const destination = join(l.dir, 'existing.qcow2');
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', destination, String(smallChain.virtualSize)]);

    const exists = await rejection(t.client.call('job.start', { ...ref, operation: { kind: 'copy', destination, afterReady: 'pivot' } }));
    assert.equal(exists.kind, 'conflict');
    assert.match(exists.message, /already exists/);
    assert.ok(exists.message.includes(destination));
    assert.match(exists.hint ?? '', /reuse-existing-file/);

    const operation = { kind: 'copy', destination, reuseExisting: true, afterReady: 'pivot' } as const;
    const preview = await t.client.call('operation.preview', { ...ref, operation });
    assert.deepEqual(preview.needs, ['reuse-existing-file']);
    assert.equal(preview.created, null, 'nothing is created: the file exists');
    assert.ok(preview.warnings.some((w) => w.includes(destination) && /written over/.test(w)));

    const unconfirmed = await rejection(t.client.call('job.start', { ...ref, operation }));
    assert.equal(unconfirmed.kind, 'conflict');
    assert.match(unconfirmed.message, /written over/);
    assert.ok(unconfirmed.message.includes(destination), `the refusal names the file: ${unconfirmed.message}`);
    assert.deepEqual(await virshBlockJobInfo(l.name, 'vda'), {}, 'nothing was started');

    const job = await t.client.call('job.start', { ...ref, operation, confirm: ['reuse-existing-file'] });
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(l.name), paths(preview.after));
    assert.deepEqual(await missingAfterStop(l, destination), []);
  });

  it('disk.snapshot adds a layer on top, as previewed; without a destination it goes beside the active layer', async (ctx) => {
    const l = await lab(ctx);
    const ref = refOf(l.name);
    const destination = join(l.dir, 'snap.qcow2');
    const preview = await t.client.call('operation.preview', { ...ref, operation: { kind: 'snapshot', destination } });
    assert.deepEqual(paths(preview.after), [destination, ...[...l.layers].reverse()]);
    assert.deepEqual(preview.created, { path: destination, format: 'qcow2' });

    const disk = await t.client.call('disk.snapshot', { ...ref, destination });
    assert.deepEqual(paths(disk.chain), paths(preview.after));
    assert.deepEqual(await liveChain(l.name), paths(preview.after));
    assert.ok(disk.chain.every((layer) => layer.index !== null), 'every layer of the new chain has an index');

    const again = await t.client.call('disk.snapshot', ref);
    const added = again.chain[0]?.path ?? '';
    assert.match(added, new RegExp(`^${l.dir}/snap\\.\\d{8}-\\d{6}\\.qcow2$`));
    assert.deepEqual(paths(again.chain).slice(1), paths(preview.after));
    assert.deepEqual(await liveChain(l.name), paths(again.chain));
    assert.deepEqual(paths((await diskOf(t.client, hostId, l.name)).chain), paths(again.chain));
  });
});
