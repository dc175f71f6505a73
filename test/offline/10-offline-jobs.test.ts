// Every offline operation on real qcow2 chains through qemu-storage-daemon: the guest-visible
// data afterwards equals a raw picture taken before (qemu-img compare), every image passes
// qemu-img check, the chain is the one planned, and no daemon outlives its job.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readImageChain } from '../../src/main/core/offline/image-tool.ts';
import { OfflineJob, type OfflineOutcome } from '../../src/main/core/offline/offline-job.ts';
import { OfflinePlanError, type OfflineOperation } from '../../src/main/core/offline/plan.ts';
import { assertChainClean, assertSameData, daemonsUnder, makeChain, useLabDir, type TestChain } from './offline-harness.ts';

async function run(chain: TestChain, operation: OfflineOperation): Promise<OfflineOutcome> {
  const job = await OfflineJob.start({ domain: 'none', disk: 'vda', operation, bandwidthBytesPerSec: 0 });
  const outcome = await job.done;
  assert.equal(outcome.status, 'completed', outcome.message ?? '');
  assert.ok(outcome.checks.every((c) => c.clean), JSON.stringify(outcome.checks));
  assert.deepEqual(await daemonsUnder(chain.dir), [], 'a daemon outlived its job');
  assert.ok(job.intent.daemon && !existsSync(job.intent.daemon.runtimeDir), 'the daemon\'s runtime folder is removed');
  return outcome;
}

test('pull, full: the active layer holds everything and has no backing file', async (t) => {
  const chain = await makeChain(await useLabDir(t, 'pull-full'));
  const outcome = await run(chain, { kind: 'pull', image: chain.active, base: null });
  assert.deepEqual(outcome.chain.map((l) => l.path), [chain.active]);
  assert.deepEqual(await assertChainClean(chain.active), [chain.active]);
  await assertSameData(chain, chain.active);
});

test('pull to a base: the layers between go, the base stays linked by its relative name', async (t) => {
  const chain = await makeChain(await useLabDir(t, 'pull-base'));
  const [base, , active] = chain.layers as [string, string, string];
  await run(chain, { kind: 'pull', image: active, base });
  assert.deepEqual(await assertChainClean(active), [active, base]);
  assert.equal((await readImageChain(active))[0]!.backingRecorded, 'base.qcow2');
  await assertSameData(chain, active);
});

test('commit of a middle layer into the base: the active layer now sits on the base', async (t) => {
  const chain = await makeChain(await useLabDir(t, 'commit-middle'));
  const [base, middle, active] = chain.layers as [string, string, string];
  const outcome = await run(chain, { kind: 'commit', image: active, top: middle, base });
  assert.deepEqual(outcome.chain.map((l) => l.path), [active, base]);
  assert.deepEqual(await assertChainClean(active), [active, base]);
  assert.equal((await readImageChain(active))[0]!.backingRecorded, 'base.qcow2');
  await assertSameData(chain, active);
});

test('commit of the active layer (through ready and job-complete): the base holds the disk', async (t) => {
  const chain = await makeChain(await useLabDir(t, 'commit-active'));
  const [base, , active] = chain.layers as [string, string, string];
  const job = await OfflineJob.start({ domain: 'none', disk: 'vda', operation: { kind: 'commit', image: active, top: active, base }, bandwidthBytesPerSec: 0 });
  let sawReady = false;
  job.onEvent((e) => (sawReady ||= e.kind === 'ready'));
  const outcome = await job.done;
  assert.equal(outcome.status, 'completed', outcome.message ?? '');
  assert.ok(sawReady, 'an active commit goes through ready');
  assert.deepEqual(outcome.chain.map((l) => l.path), [base]);
  assert.deepEqual(await assertChainClean(base), [base]);
  await assertSameData(chain, base);
  assert.deepEqual(await daemonsUnder(chain.dir), []);
});

test('commit of the active layer into the middle one', async (t) => {
  const chain = await makeChain(await useLabDir(t, 'commit-active-mid'));
  const [base, middle, active] = chain.layers as [string, string, string];
  const outcome = await run(chain, { kind: 'commit', image: active, top: active, base: middle });
  assert.deepEqual(outcome.chain.map((l) => l.path), [middle, base]);
  assert.deepEqual(await assertChainClean(middle), [middle, base]);
  await assertSameData(chain, middle);
});

for (const [format, shallow] of [['qcow2', false], ['qcow2', true], ['raw', false]] as const) {
  test(`copy to a new ${format} file, ${shallow ? 'shallow' : 'full'}`, async (t) => {
    const chain = await makeChain(await useLabDir(t, `copy-${format}-${shallow ? 'shallow' : 'full'}`));
    const [base, middle, active] = chain.layers as [string, string, string];
    const destination = join(chain.dir, `copy.${format}`);
    const outcome = await run(chain, { kind: 'copy', image: active, destination, format, shallow });
    const expected = shallow ? [destination, middle, base] : [destination];
    assert.deepEqual(outcome.chain.map((l) => l.path), expected);
    assert.deepEqual(await assertChainClean(destination), expected);
    await assertSameData(chain, destination, format);
    if (shallow) assert.equal((await readImageChain(destination))[0]!.backingRecorded, 'layer1.qcow2');
    // The source chain is untouched.
    assert.deepEqual(await assertChainClean(active), [active, middle, base]);
    await assertSameData(chain, active);
  });
}

test('impossible operations are refused before anything runs, naming the problem', async (t) => {
  const chain = await makeChain(await useLabDir(t, 'refusals'));
  const [base, middle, active] = chain.layers as [string, string, string];
  const refuse = (operation: OfflineOperation, re: RegExp): Promise<void> =>
    assert.rejects(OfflineJob.start({ domain: 'none', disk: 'vda', operation, bandwidthBytesPerSec: 0 }), (err: unknown) => err instanceof OfflinePlanError && re.test(err.message));
  await refuse({ kind: 'commit', image: active, top: base, base: middle }, /must lie below/);
  await refuse({ kind: 'pull', image: active, base: middle }, /nothing to pull/);
  await refuse({ kind: 'copy', image: active, destination: base, format: 'qcow2', shallow: false }, /is a layer of this chain/);
  await refuse({ kind: 'copy', image: active, destination: join(chain.dir, 'x.raw'), format: 'raw', shallow: true }, /raw image cannot name/);
  await refuse({ kind: 'commit', image: active, top: join(chain.dir, 'nope.qcow2'), base }, /is not in the disk's chain/);
  assert.deepEqual(await daemonsUnder(chain.dir), []);
});
