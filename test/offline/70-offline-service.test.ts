// Offline jobs through the service, as the window runs them: job.start on a shut-off domain runs
// in qemu-storage-daemon under the same job model (events, limits, abort, history), the chain is
// read from the image headers for domain.get and the preview, and the definition is rewritten
// only once the data is complete.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { Events } from '../../src/shared/contract.ts';
import { isFinished, type Job } from '../../src/shared/model.ts';
import { definedSource } from '../../src/main/core/offline/domain-definition.ts';
import { startTestCore, type TestCore } from '../core/core-harness.ts';
import { startRemoteForwarder } from '../lab/remote-forwarder.ts';
import { waitFor } from '../lab/wait.ts';
import { assertChainClean, assertSameData, daemonsUnder, makeChain, MiB, sweepStaleDefinedDomains, TEST_URI, useDefinedDomain, useLabDir, virsh } from './offline-harness.ts';

const hostId = 'default';

function jobEvents(t: TestCore, domain: string): (Job & { transition: string })[] {
  return t.events.filter((e) => e.event === 'job').map((e) => e.data as Events['job']).filter((j) => j.domain === domain);
}

// Offline jobs move in steps of their own: polled often, and given a minute.
const patiently = { timeoutMs: 60_000, intervalMs: 25 } as const;

const ended = (t: TestCore, id: string): Promise<Job> => waitFor(() => jobEvents(t, id.split('/')[1]!).find((j) => j.id === id && isFinished(j)), { ...patiently, what: `job ${id} to end` });

async function definedPath(name: string): Promise<string | null> {
  return definedSource(await virsh(['dumpxml', '--inactive', name]), 'vda').path;
}

describe('offline jobs through the service', () => {
  let core: TestCore;
  before(async () => {
    await sweepStaleDefinedDomains();
    core = await startTestCore({ uri: TEST_URI });
  });
  test.after(() => core.close());

  test('a pull on a shut-off domain: chain from the headers, preview offline, events, history, chain and data', async (t) => {
    const dir = await useLabDir(t, 'svc-pull');
    const chain = await makeChain(dir);
    const name = await useDefinedDomain(t, dir, chain.active, 'svc-pull');

    const detail = await core.client.call('domain.get', { hostId, domain: name });
    assert.equal(detail.state, 'shutoff');
    const disk = detail.disks[0]!;
    assert.deepEqual(disk.chain.map((l) => [l.index, l.path]), [[0, chain.layers[2]], [1, chain.layers[1]], [2, chain.layers[0]]]);
    const preview = await core.client.call('operation.preview', { hostId, domain: name, disk: 'vda', operation: { kind: 'pull' } });
    assert.equal(preview.engine, 'qemu-storage-daemon');
    assert.match(preview.warnings.join(' '), /Offline, through qemu-storage-daemon/);
    assert.ok(preview.bytesToMove !== null && preview.bytesToMove > 0, 'sizes come from the image files');

    const job = await core.client.call('job.start', { hostId, domain: name, disk: 'vda', operation: { kind: 'pull' }, bandwidthBytesPerSec: 0, confirm: [], whenBusy: 'refuse' });
    assert.equal(job.engine, 'qemu-storage-daemon');
    const end = await ended(core, job.id);
    assert.equal(end.phase, 'completed', end.outcome ?? '');
    const transitions = jobEvents(core, name).filter((j) => j.id === job.id).map((j) => `${j.transition}:${j.phase}`);
    assert.deepEqual([transitions[0], transitions.at(-1)], ['appeared:requested', 'ended:completed']);
    assert.ok(transitions.includes('phase:running'), transitions.join(' '));
    assert.ok(core.events.some((e) => e.event === 'domain.changed' && (e.data as Events['domain.changed']).domain === name));
    const history = await core.client.call('history.list', {});
    assert.equal(history.find((j) => j.id === job.id)?.engine, 'qemu-storage-daemon');

    await assertSameData(chain, chain.active);
    assert.deepEqual(await assertChainClean(chain.active), [chain.active]);
    assert.equal(await definedPath(name), chain.active);
    assert.deepEqual((await core.client.call('domain.get', { hostId, domain: name })).disks[0]!.chain.map((l) => l.path), [chain.active]);
    assert.deepEqual(await daemonsUnder(dir), []);
  });

  test('an active commit moves the data down, the definition names the base and the merged layers go; a copy moves the disk to its new file', async (t) => {
    const dir = await useLabDir(t, 'svc-commit');
    const chain = await makeChain(dir);
    const name = await useDefinedDomain(t, dir, chain.active, 'svc-commit');
    const commit = await core.client.call('job.start', { hostId, domain: name, disk: 'vda', operation: { kind: 'commit', base: 2, deleteLayers: true }, bandwidthBytesPerSec: 0, confirm: ['drop-layers', 'delete-files'], whenBusy: 'refuse' });
    assert.equal(commit.type, 'active-commit');
    assert.equal(commit.afterReady, 'pivot', 'offline, the definition switches by itself');
    const c = await ended(core, commit.id);
    assert.equal(c.phase, 'completed', c.outcome ?? '');
    assert.equal(await definedPath(name), chain.layers[0]);
    await assertSameData(chain, chain.layers[0]!);
    assert.ok(!existsSync(chain.layers[1]!) && !existsSync(chain.layers[2]!), 'the layers that left the chain are deleted, once the definition no longer names them');

    const destination = join(dir, 'moved.qcow2');
    const copy = await core.client.call('job.start', { hostId, domain: name, disk: 'vda', operation: { kind: 'copy', destination }, bandwidthBytesPerSec: 0, confirm: [], whenBusy: 'refuse' });
    const e = await ended(core, copy.id);
    assert.equal(e.phase, 'completed', e.outcome ?? '');
    assert.equal(e.leftover, null);
    assert.equal(await definedPath(name), destination);
    await assertSameData(chain, destination);
    assert.deepEqual(await assertChainClean(destination), [destination]);
    await assert.rejects(core.client.call('job.pivot', { hostId, domain: name, disk: 'vda' }));
  });

  test('the slider changes a running offline job at once, measured', async (t) => {
    const dir = await useLabDir(t, 'svc-steer');
    const chain = await makeChain(dir, { writes: [[[0, 48 * MiB]], [[0, 1 * MiB]]] });
    const name = await useDefinedDomain(t, dir, chain.active, 'svc-steer');
    // A pull: QEMU's stream moves one cluster run at a time under its limit, so its offset is a
    // fair measure (a mirror issues a whole buffer at once, then waits).
    const copy = await core.client.call('job.start', { hostId, domain: name, disk: 'vda', operation: { kind: 'pull' }, bandwidthBytesPerSec: 1 * MiB, confirm: [], whenBusy: 'refuse' });
    const curOf = async (): Promise<number> => (await core.client.call('jobs.list', { hostId })).find((j) => j.id === copy.id)?.cur ?? 0;
    const c0 = await waitFor(async () => ((await curOf()) > 0 ? curOf() : undefined), { ...patiently, what: 'the job to move' });
    const t0 = Date.now();
    const c1 = await waitFor(
      async () => {
        const c = await curOf();
        return c - c0 >= 2 * MiB ? c : undefined;
      },
      { ...patiently, what: '2 MiB more' },
    );
    const slow = ((c1 - c0) / (Date.now() - t0)) * 1000;
    // Raised, the job moves the rest (some 45 MiB) at the new limit, timed to its end.
    const changed = await core.client.call('job.setSpeed', { hostId, domain: name, disk: 'vda', bandwidthBytesPerSec: 16 * MiB });
    assert.equal(changed.bandwidthBytesPerSec, 16 * MiB);
    const t1 = Date.now();
    const from = await curOf();
    const end = await ended(core, copy.id);
    const fast = ((48 * MiB - from) / (Date.now() - t1)) * 1000;
    t.diagnostic(`at a 1 MiB/s limit: ${(slow / MiB).toFixed(2)} MiB/s; after the slider moved to 16 MiB/s: ${(fast / MiB).toFixed(2)} MiB/s`);
    assert.equal(end.phase, 'completed', end.outcome ?? '');
    assert.ok(slow < 2 * MiB, `held at about 1 MiB/s, measured ${slow}`);
    assert.ok(fast > 4 * slow, `much faster after the change, measured ${fast}`);
    await assertSameData(chain, chain.active);
  });

  test('abort leaves the chain and the definition as they were, every image valid, and names the partial copy', async (t) => {
    const dir = await useLabDir(t, 'svc-abort');
    const chain = await makeChain(dir, { writes: [[[0, 32 * MiB]], [[0, 1 * MiB]]] });
    const name = await useDefinedDomain(t, dir, chain.active, 'svc-abort');
    const destination = join(dir, 'copy.qcow2');
    const copy = await core.client.call('job.start', { hostId, domain: name, disk: 'vda', operation: { kind: 'copy', destination }, bandwidthBytesPerSec: 1 * MiB, confirm: [], whenBusy: 'refuse' });
    await waitFor(async () => ((await core.client.call('jobs.list', { hostId })).find((j) => j.id === copy.id)?.cur ?? 0) > 0 || undefined, { ...patiently, what: 'the job to move' });
    await core.client.call('job.abort', { hostId, domain: name, disk: 'vda' });
    const end = await ended(core, copy.id);
    assert.equal(end.phase, 'cancelled', end.outcome ?? '');
    assert.match(end.outcome ?? '', /keeps the chain it had/);
    assert.equal(end.leftover?.path, destination, 'the partial copy is named');
    assert.ok(existsSync(destination));
    assert.equal(await definedPath(name), chain.active, 'the definition is unchanged');
    assert.deepEqual(await assertChainClean(chain.active), [chain.active, chain.layers[0]]);
    await assertSameData(chain, chain.active);
    assert.deepEqual(await daemonsUnder(dir), []);
    await core.client.call('job.removeLeftover', { hostId, jobId: copy.id, confirm: ['delete-files'] });
    assert.ok(!existsSync(destination));
  });
});

describe('offline jobs on a remote host', () => {
  before(() => sweepStaleDefinedDomains());

  test('are refused with the reason: the images are on that host', async (t) => {
    const dir = await useLabDir(t, 'svc-remote');
    const chain = await makeChain(dir);
    const name = await useDefinedDomain(t, dir, chain.active, 'svc-remote');
    const forwarder = await startRemoteForwarder();
    t.after(() => forwarder.close());
    const core = await startTestCore({ uri: TEST_URI });
    t.after(() => core.close());
    const remote = await core.client.call('hosts.add', { uri: forwarder.uri });
    await waitFor(async () => ((await core.client.call('hosts.list', {})).find((h) => h.id === remote.id)?.state === 'connected' ? true : undefined), { ...patiently, what: 'the remote host to connect' });
    await assert.rejects(
      core.client.call('job.start', { hostId: remote.id, domain: name, disk: 'vda', operation: { kind: 'pull' }, bandwidthBytesPerSec: 0, confirm: [], whenBusy: 'refuse' }),
      /is shut off, and operations on shut-off domains need the disk images on this machine/,
    );
    assert.deepEqual(await daemonsUnder(dir), []);
  });
});

describe('offline jobs across a restart of Strata', () => {
  before(() => sweepStaleDefinedDomains());

  test('a job whose daemon runs on is followed by the next start to its end; one whose daemon died is reported', async (t) => {
    const dir = await useLabDir(t, 'svc-restart');
    const dataDir = join(dir, 'data');
    const chain = await makeChain(dir, { writes: [[[0, 24 * MiB]], [[0, 1 * MiB]]] });
    const name = await useDefinedDomain(t, dir, chain.active, 'svc-restart');
    const destination = join(dir, 'moved.qcow2');

    const first = await startTestCore({ uri: TEST_URI, dataDir });
    const copy = await first.client.call('job.start', { hostId, domain: name, disk: 'vda', operation: { kind: 'copy', destination }, bandwidthBytesPerSec: 1 * MiB, confirm: [], whenBusy: 'refuse' });
    await waitFor(async () => ((await first.client.call('jobs.list', { hostId })).find((j) => j.id === copy.id)?.cur ?? 0) > 0 || undefined, { ...patiently, what: 'the copy to move' });
    await first.close();
    const [pid] = await daemonsUnder(dir);
    assert.ok(pid, 'the daemon runs on after Strata stopped');

    const second = await startTestCore({ uri: TEST_URI, dataDir });
    t.after(() => second.close());
    const found = await waitFor(() => jobEvents(second, name).find((j) => j.engine === 'qemu-storage-daemon' && j.phase === 'running'), { ...patiently, what: 'the job found again' });
    assert.equal(found.origin, 'strata');
    await second.client.call('job.setSpeed', { hostId, domain: name, disk: 'vda', bandwidthBytesPerSec: 0 });
    const end = await ended(second, found.id);
    assert.equal(end.phase, 'completed', end.outcome ?? '');
    assert.equal(await definedPath(name), destination);
    await assertSameData(chain, destination);
    assert.deepEqual(await daemonsUnder(dir), []);

    // Now a job whose daemon is killed while no Strata runs: reported at the next start, the
    // chain as it was, the partial copy named.
    const again = join(dir, 'again.qcow2');
    const slow = await second.client.call('job.start', { hostId, domain: name, disk: 'vda', operation: { kind: 'copy', destination: again }, bandwidthBytesPerSec: 1 * MiB, confirm: [], whenBusy: 'refuse' });
    await waitFor(async () => ((await second.client.call('jobs.list', { hostId })).find((j) => j.id === slow.id)?.cur ?? 0) > 0 || undefined, { ...patiently, what: 'the second copy to move' });
    await second.close();
    const [orphan] = await daemonsUnder(dir);
    assert.ok(orphan);
    process.kill(orphan, 'SIGKILL');
    await waitFor(async () => ((await daemonsUnder(dir)).length === 0 ? true : undefined), { ...patiently, what: 'the daemon to die' });

    const third = await startTestCore({ uri: TEST_URI, dataDir });
    t.after(() => third.close());
    const told = await waitFor(() => jobEvents(third, name).find((j) => isFinished(j)), { ...patiently, what: 'the dead job reported' });
    assert.equal(told.phase, 'failed');
    assert.match(told.outcome ?? '', /found at start-up: Strata stopped during a copy/);
    assert.equal(told.leftover?.path, again);
    assert.equal(await definedPath(name), destination, 'the definition keeps the chain it had');
    assert.deepEqual(await assertChainClean(destination), [destination]);
    const history = await third.client.call('history.list', {});
    assert.ok(history.some((j) => j.id === told.id));
  });
});
