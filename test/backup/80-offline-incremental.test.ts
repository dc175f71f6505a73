// Incremental backups of shut-off domains. libvirt 9.0 will not create a checkpoint of a shut-off
// domain, so the offline engine adds the checkpoint's persistent bitmap to the disk as its backup
// starts and libvirt records the checkpoint around it (redefine) once the backup is complete.
// Writes made to the image while the domain is off (qemu-io here, which opens the image through
// QEMU's block layer and so updates its enabled bitmaps) are what the next incremental holds.
// Where the bitmaps no longer tell every write, the next backup is full and says why; a backup
// cut short by a stop of Strata settles its set instead of lingering as a copy.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { makeTraversable, runTool } from '../../src/main/core/lab/images.ts';
import { readChainBitmaps } from '../../src/main/core/offline/bitmaps.ts';
import { IntentStore } from '../../src/main/core/offline/intents.ts';
import { startTestCore, type TestCore } from '../core/core-harness.ts';
import { waitForEnd, waitForJob } from '../core/engine-harness.ts';
import { TEST_URI, waitFor } from '../lab/harness.ts';
import { assertSameData, daemonsUnder, makeChain, sweepStaleDefinedDomains, useDefinedDomain, useLabDir, virsh } from '../offline/offline-harness.ts';
import { backupCore, compareImages, hostId, MiB, settled } from './backup-harness.ts';

async function checkpoints(domain: string): Promise<string[]> {
  return (await virsh(['checkpoint-list', '--name', domain])).split('\n').map((l) => l.trim()).filter(Boolean);
}

async function bitmapsOf(image: string): Promise<{ name: string; flags: string[] }[]> {
  return (await readChainBitmaps(image))[0]!.bitmaps;
}

describe('incremental backups of shut-off domains', { timeout: 300_000 }, () => {
  before(async () => {
    await sweepStaleDefinedDomains();
  });

  it('full, then 10 MiB written while shut off: the incremental holds about 10 MiB and full + incremental restore equal to the disk', async (ctx) => {
    const { t, folder } = await backupCore(ctx);
    const dir = await useLabDir(ctx, 'bk-off-inc');
    const chain = await makeChain(dir);
    const name = await useDefinedDomain(ctx, dir, chain.active, 'bk-off-inc');

    const first = await t.client.call('backup.start', { hostId, domain: name });
    assert.equal(first.point.kind, 'full');
    const ended = await waitForEnd(t, first.jobs[0]!.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    const full = await settled(t, name, first.set.id);
    assert.equal(full.good, true, full.points[0]?.reason ?? '');
    const checkpoint = full.points[0]!.checkpoint;
    // The bitmap is in the image before libvirt names it: libvirt never points at a missing one.
    assert.deepEqual(await checkpoints(name), [checkpoint]);
    assert.deepEqual(await bitmapsOf(chain.active), [{ name: checkpoint, flags: ['auto'], granularity: 65536 }]);

    await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 10M', chain.active]);

    const plan = await t.client.call('backup.preview', { hostId, domain: name });
    assert.equal(plan.kind, 'incremental', plan.reason);
    assert.equal(plan.setId, full.id);
    assert.match(plan.reason, new RegExp(`since checkpoint ${checkpoint}`));
    assert.equal(plan.diskBytes[0]?.bytes, 10 * MiB, 'the bitmap marks the 10 MiB written');

    const second = await t.client.call('backup.start', { hostId, domain: name });
    assert.equal(second.point.kind, 'incremental');
    assert.equal(second.set.id, full.id);
    const incEnded = await waitForEnd(t, second.jobs[0]!.id);
    assert.equal(incEnded.phase, 'completed', incEnded.outcome ?? '');
    assert.equal(incEnded.type, 'backup');
    const set = await settled(t, name, full.id, 1);
    assert.equal(set.good, true, set.points[1]?.reason ?? '');
    const inc = set.points[1]!;
    assert.equal(inc.status, 'complete', inc.reason ?? '');
    const incBytes = (await stat(join(set.folder, inc.images[0]!.file))).size;
    assert.ok(incBytes >= 10 * MiB && incBytes < 11 * MiB, `the incremental's file holds ${incBytes} bytes, not about 10 MiB`);
    assert.deepEqual(await checkpoints(name), [checkpoint, inc.checkpoint]);
    assert.equal((await t.client.call('backup.verify', { hostId, domain: name, setId: set.id })).ok, true);

    const restored1 = join(folder, 'restored-1.qcow2');
    await t.client.call('backup.restore', { hostId, domain: name, setId: set.id, point: 1, disk: 'vda', destination: restored1 });
    assert.equal(await compareImages(chain.active, restored1), null);
    const restored0 = join(folder, 'restored-0.qcow2');
    await t.client.call('backup.restore', { hostId, domain: name, setId: set.id, point: 0, disk: 'vda', destination: restored0 });
    await assertSameData(chain, restored0);

    // Retention's removal of the set: libvirt forgets the checkpoints, the bitmaps leave the image.
    await t.client.call('backup.remove', { hostId, domain: name, setId: set.id, confirm: ['delete-files'] });
    assert.deepEqual(await checkpoints(name), []);
    assert.deepEqual(await bitmapsOf(chain.active), []);
  });

  it('a checkpoint libvirt made while the domain ran starts an offline incremental once it is shut off', async (ctx) => {
    const { t, folder } = await backupCore(ctx);
    const dir = await useLabDir(ctx, 'bk-live-off');
    const chain = await makeChain(dir, { writes: [[[0, 4 * MiB]]] });
    const name = await useDefinedDomain(ctx, dir, chain.active, 'bk-live-off');
    await virsh(['start', name]);
    const live = await t.client.call('backup.start', { hostId, domain: name });
    assert.equal(live.jobs[0]!.engine ?? 'libvirt', 'libvirt');
    await waitForEnd(t, live.jobs[0]!.id);
    const set = await settled(t, name, live.set.id);
    assert.equal(set.good, true, set.points[0]?.reason ?? '');
    // libvirt's destroy lets QEMU close the image, which stores the bitmap consistent.
    await virsh(['destroy', name]);
    await waitFor(async () => (await virsh(['domstate', name])).includes('shut off') || undefined, { what: `${name} to be shut off` });
    assert.deepEqual((await bitmapsOf(chain.active)).map((b) => [b.name, b.flags]), [[set.points[0]!.checkpoint, ['auto']]]);
    await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 2M', chain.active]);

    const plan = await t.client.call('backup.preview', { hostId, domain: name });
    assert.equal(plan.kind, 'incremental', plan.reason);
    assert.equal(plan.diskBytes[0]?.bytes, 2 * MiB);
    const inc = await t.client.call('backup.start', { hostId, domain: name });
    assert.equal(inc.jobs[0]!.engine, 'qemu-storage-daemon');
    await waitForEnd(t, inc.jobs[0]!.id);
    const after = await settled(t, name, set.id, 1);
    assert.equal(after.points[1]?.status, 'complete', after.points[1]?.reason ?? '');
    const restored = join(folder, 'restored.qcow2');
    await t.client.call('backup.restore', { hostId, domain: name, setId: set.id, point: 1, disk: 'vda', destination: restored });
    assert.equal(await compareImages(chain.active, restored), null);
  });

  it('where the bitmaps do not allow it, the next backup of a shut-off domain is full and says why', async (ctx) => {
    const { t } = await backupCore(ctx);
    const dir = await useLabDir(ctx, 'bk-off-nobitmap');
    const chain = await makeChain(dir, { writes: [[[0, 4 * MiB]]] });
    const name = await useDefinedDomain(ctx, dir, chain.active, 'bk-off-nobitmap');

    const first = await t.client.call('backup.start', { hostId, domain: name });
    await waitForEnd(t, first.jobs[0]!.id);
    const full = await settled(t, name, first.set.id);
    assert.equal(full.good, true);
    const checkpoint = full.points[0]!.checkpoint;

    // A process that had the image open read-write and was killed leaves the bitmap marked in use.
    const daemon = spawn('qemu-storage-daemon', ['--blockdev', JSON.stringify({ driver: 'file', 'node-name': 'f', filename: chain.active }), '--blockdev', JSON.stringify({ driver: 'qcow2', 'node-name': 'q', file: 'f' })], { stdio: 'ignore' });
    await waitFor(async () => (await bitmapsOf(chain.active))[0]?.flags.includes('in-use') || undefined, { timeoutMs: 15_000, what: 'the daemon to open the image' });
    daemon.kill('SIGKILL');
    await new Promise((r) => daemon.once('exit', r));
    const inUse = await t.client.call('backup.preview', { hostId, domain: name });
    assert.equal(inUse.kind, 'full');
    assert.match(inUse.reason, new RegExp(`bitmap ${checkpoint} in ${chain.active} is marked in use`));

    // The chain changed: an offline copy moved the disk to a new file, which has no bitmaps.
    const moved = join(dir, 'moved.qcow2');
    const copy = await t.client.call('job.start', { hostId, domain: name, disk: 'vda', operation: { kind: 'copy', destination: moved }, bandwidthBytesPerSec: 0, confirm: [], whenBusy: 'refuse' });
    assert.equal((await waitForEnd(t, copy.id)).phase, 'completed');
    const gone = await t.client.call('backup.preview', { hostId, domain: name });
    assert.equal(gone.kind, 'full');
    assert.match(gone.reason, new RegExp(`${chain.active}, the disk's image when checkpoint ${checkpoint} was made, is no longer in its chain`));

    const next = await t.client.call('backup.start', { hostId, domain: name });
    assert.equal(next.point.kind, 'full');
    assert.notEqual(next.set.id, full.id);
    assert.match(next.point.reason ?? '', /is no longer in its chain/);
    await waitForEnd(t, next.jobs[0]!.id);
    const second = await settled(t, name, next.set.id);
    assert.equal(second.good, true, second.points[0]?.reason ?? '');
    // The new checkpoint's bitmap is in the image, so the one after can be incremental again.
    assert.equal((await t.client.call('backup.preview', { hostId, domain: name })).kind, 'incremental');
  });

  it('a backup cut short by a stop of Strata: its daemon followed to the end by the next Strata, or its set settled failed when the daemon died', async (ctx) => {
    const dir = await useLabDir(ctx, 'bk-off-stop');
    const chain = await makeChain(dir, { writes: [[[0, 24 * MiB]]] });
    const name = await useDefinedDomain(ctx, dir, chain.active, 'bk-off-stop');
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-offline-stop-data-'));
    const folder = await mkdtemp(join(tmpdir(), 'strata-offline-stop-backups-'));
    await makeTraversable(folder);
    // Every Strata of the test is closed, even one a failure left open, before its folders go.
    const cores: TestCore[] = [];
    const strata = async (): Promise<TestCore> => {
      const core = await startTestCore({ uri: TEST_URI, dataDir });
      cores.push(core);
      return core;
    };
    ctx.after(async () => {
      await Promise.all(cores.map((c) => c.close()));
      await Promise.all([rm(dataDir, { recursive: true, force: true }), rm(folder, { recursive: true, force: true })]);
    });
    // The backup's job is under way in its daemon: the intent record says it was sent, and it moved data.
    const underWay = async (core: TestCore, jobId: string): Promise<void> => {
      await waitFor(async () => (await new IntentStore(dataDir).list()).some((i) => i.domain === name && i.step === 'job-started') || undefined, {
        timeoutMs: 60_000,
        what: 'the backup to start in its daemon',
      });
      await waitForJob(core, (j) => j.id === jobId && j.cur > 0, { timeoutMs: 60_000, what: 'the backup to move data' });
    };

    // Alive: quitting Strata leaves the daemon running; the next one follows it as a backup.
    const first = await strata();
    await first.client.call('backup.setLocation', { hostId, path: folder });
    const slow = await first.client.call('backup.start', { hostId, domain: name, bandwidthBytesPerSec: MiB });
    await underWay(first, slow.jobs[0]!.id);
    await first.close();
    assert.equal((await daemonsUnder(dir)).length, 1, 'the daemon outlives the Strata that started it');
    const second = await strata();
    const followed = await waitForJob(second, (j) => j.domain === name && j.endedAt === null, { timeoutMs: 60_000 });
    assert.equal(followed.type, 'backup', 'found as a backup, not as a copy');
    await second.client.call('job.setSpeed', { hostId, domain: name, disk: 'vda', bandwidthBytesPerSec: 0 });
    const good = await settled(second, name, slow.set.id, 0, 120_000);
    assert.equal(good.good, true, good.points[0]?.reason ?? '');
    assert.deepEqual(await checkpoints(name), [good.points[0]!.checkpoint]);
    await second.close();

    // Dead: the daemon killed while no Strata ran; the point is settled failed, its image removed.
    const third = await strata();
    const cut = await third.client.call('backup.start', { hostId, domain: name, kind: 'full', bandwidthBytesPerSec: MiB });
    await underWay(third, cut.jobs[0]!.id);
    await third.close();
    for (const pid of await daemonsUnder(dir)) process.kill(pid, 'SIGKILL');
    await waitFor(async () => ((await daemonsUnder(dir)).length === 0) || undefined, { timeoutMs: 15_000, what: 'the daemon to die' });
    const fourth = await strata();
    const ended = await waitForJob(fourth, (j) => j.domain === name && j.endedAt !== null, { timeoutMs: 60_000 });
    assert.equal(ended.type, 'backup');
    assert.equal(ended.phase, 'failed');
    assert.doesNotMatch(ended.outcome ?? '', /copy .* is left for you/);
    const failed = await settled(fourth, name, cut.set.id, 0, 60_000);
    assert.equal(failed.good, false);
    assert.equal(failed.points[0]?.status, 'failed');
    assert.ok(!existsSync(join(failed.folder, failed.points[0]!.images[0]!.file)), 'the partial image is gone');
    const listed = await fourth.client.call('backup.list', { hostId, domain: name });
    assert.deepEqual(listed.filter((s) => s.good).map((s) => s.id), [good.id], 'only the completed set lists as good');
    // The killed daemon's bitmaps are not trusted: the next backup is full, and says why.
    const after = await fourth.client.call('backup.preview', { hostId, domain: name });
    assert.equal(after.kind, 'full');
    assert.match(after.reason, /marked in use/);
  });
});
