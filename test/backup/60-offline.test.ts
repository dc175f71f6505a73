// Backups of shut-off domains: the offline engine (qemu-storage-daemon, blockdev-backup sync full)
// copies each disk's whole chain into the set's image as a job of type 'backup', with progress and
// abort like the others. The domain's definition and chain stay as they were; the set restores
// equal to the disk (qemu-img compare), and an aborted one leaves no set listed as good.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { readChainBitmaps } from '../../src/main/core/offline/bitmaps.ts';
import { definedSource } from '../../src/main/core/offline/domain-definition.ts';
import { rejection, waitForEnd } from '../core/engine-harness.ts';
import { assertChainClean, assertSameData, makeChain, sweepStaleDefinedDomains, useDefinedDomain, useLabDir, virsh } from '../offline/offline-harness.ts';
import { backupCore, hostId, MiB, settled } from './backup-harness.ts';

async function definedPath(name: string): Promise<string | null> {
  return definedSource(await virsh(['dumpxml', '--inactive', name]), 'vda').path;
}

describe('backups of shut-off domains', { timeout: 300_000 }, () => {
  before(async () => {
    await sweepStaleDefinedDomains();
  });

  it('a full backup through qemu-storage-daemon restores equal to the disk, and leaves the domain as it was', async (ctx) => {
    const { t, folder } = await backupCore(ctx);
    const dir = await useLabDir(ctx, 'bk-off');
    const chain = await makeChain(dir);
    const name = await useDefinedDomain(ctx, dir, chain.active, 'bk-off');

    const plan = await t.client.call('backup.preview', { hostId, domain: name });
    assert.equal(plan.refused, null);
    assert.equal(plan.kind, 'full');
    assert.match(plan.reason, /no earlier backup/);
    assert.ok(plan.bytesToWrite !== null && plan.bytesToWrite > 0, `bytesToWrite ${plan.bytesToWrite}`);

    const started = await t.client.call('backup.start', { hostId, domain: name });
    assert.deepEqual(
      started.jobs.map((j) => [j.type, j.disk, j.engine]),
      [['backup', 'vda', 'qemu-storage-daemon']],
    );
    const ended = await waitForEnd(t, started.jobs[0]!.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    const set = await settled(t, name, started.set.id);
    assert.equal(set.good, true, set.problem ?? '');
    assert.equal(set.points[0]?.kind, 'full');
    assert.ok((await t.client.call('history.list', {})).some((j) => j.id === ended.id && j.type === 'backup' && j.phase === 'completed'));
    assert.equal((await t.client.call('backup.verify', { hostId, domain: name, setId: set.id })).ok, true);

    assert.equal(await definedPath(name), chain.active, 'the definition still names the disk');
    assert.deepEqual(await assertChainClean(chain.active), [...chain.layers].reverse());
    const restored = join(folder, 'restored.qcow2');
    await t.client.call('backup.restore', { hostId, domain: name, setId: set.id, point: 0, disk: 'vda', destination: restored });
    await assertSameData(chain, restored);

    // The backup recorded a checkpoint (its bitmap in the image): the next one is incremental.
    const next = await t.client.call('backup.preview', { hostId, domain: name });
    assert.equal(next.kind, 'incremental', next.reason);
  });

  it('an aborted offline backup leaves no set that lists as good and no image', async (ctx) => {
    const { t } = await backupCore(ctx);
    const dir = await useLabDir(ctx, 'bk-off-abort');
    const chain = await makeChain(dir, { writes: [[[0, 16 * MiB]], [[16 * MiB, 16 * MiB]]] });
    const name = await useDefinedDomain(ctx, dir, chain.active, 'bk-off-abort');

    const slow = await t.client.call('backup.start', { hostId, domain: name, bandwidthBytesPerSec: MiB });
    const twice = await rejection(t.client.call('backup.start', { hostId, domain: name }));
    assert.match(twice.message, /already running/);
    await t.client.call('job.abort', { hostId, domain: name, disk: 'vda' });
    const ended = await waitForEnd(t, slow.jobs[0]!.id);
    assert.equal(ended.phase, 'cancelled', ended.outcome ?? '');
    const set = await settled(t, name, slow.set.id);
    assert.equal(set.good, false);
    assert.equal(set.points[0]?.status, 'cancelled');
    assert.ok(!existsSync(join(set.folder, set.points[0]!.images[0]!.file)), 'the partial image is gone');
    assert.equal(await definedPath(name), chain.active);
    await assertSameData(chain, chain.active);
    assert.deepEqual((await readChainBitmaps(chain.active))[0]!.bitmaps, [], 'the aborted backup\'s bitmap is removed');
    assert.equal((await virsh(['checkpoint-list', '--name', name])).trim(), '', 'and libvirt records no checkpoint');
  });
});
