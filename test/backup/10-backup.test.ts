// Backups of running lab domains on real libvirtd + QEMU: a full backup and a full + incremental
// restored equal to the disk byte for byte (compared after QEMU stopped), an incremental that
// holds about what was written, an aborted backup that leaves no set listed as good, and
// retention that keeps the last good set.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runTool } from '../../src/main/core/lab/images.ts';
import type { Job } from '../../src/shared/model.ts';
import { rejection, waitForEnd } from '../core/engine-harness.ts';
import { libvirt, sweepStaleLabDomains, TEST_URI, useLabDomain, virsh, type Connection } from '../lab/harness.ts';
import { backupCore, compareImages, guestWrite, hostId, MiB, settled } from './backup-harness.ts';

describe('backups of running domains', { timeout: 600_000 }, () => {
  let conn: Connection;

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
  });
  after(async () => {
    await conn?.close();
  });

  it('a full backup of a quiet domain restores equal to the disk, and is a job in jobs.list and the history', async (ctx) => {
    const { t, folder } = await backupCore(ctx);
    const lab = await useLabDomain(ctx, conn, { tag: 'full' });
    const plan = await t.client.call('backup.preview', { hostId, domain: lab.name });
    assert.equal(plan.kind, 'full');
    assert.match(plan.reason, /no earlier backup/);
    assert.ok(plan.bytesToWrite !== null && plan.bytesToWrite >= 64 * MiB, `bytesToWrite ${plan.bytesToWrite}`);
    assert.ok(plan.freeBytes !== null && plan.freeBytes > 0);
    assert.equal(plan.refused, null);

    const started = await t.client.call('backup.start', { hostId, domain: lab.name });
    assert.equal(started.point.kind, 'full');
    assert.deepEqual(
      started.jobs.map((j) => [j.type, j.disk, j.origin]),
      [['backup', 'vda', 'strata']],
    );
    const ended = await waitForEnd(t, started.jobs[0]!.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    const set = await settled(t, lab.name, started.set.id);
    assert.equal(set.good, true, set.problem ?? '');
    assert.equal(set.points[0]?.status, 'complete');
    assert.ok(set.folder.startsWith(folder));
    assert.ok((await t.client.call('history.list', {})).some((j) => j.id === ended.id && j.type === 'backup' && j.phase === 'completed'));

    const verified = await t.client.call('backup.verify', { hostId, domain: lab.name, setId: set.id });
    assert.equal(verified.ok, true, JSON.stringify(verified));

    await virsh(['destroy', lab.name]);
    const restored = join(folder, 'restored.qcow2');
    const r = await t.client.call('backup.restore', { hostId, domain: lab.name, setId: set.id, point: 0, disk: 'vda', destination: restored });
    assert.equal(r.path, restored);
    assert.equal(await compareImages(restored, lab.layers[lab.layers.length - 1]!), null);
    const again = await rejection(t.client.call('backup.restore', { hostId, domain: lab.name, setId: set.id, point: 0, disk: 'vda', destination: restored }));
    assert.equal(again.kind, 'conflict');
  });

  it('a full and an incremental restore equal, the incremental holding about the 10 MiB written between them, as its preview said', async (ctx) => {
    const { t, folder } = await backupCore(ctx);
    const lab = await useLabDomain(ctx, conn, { tag: 'incremental' });
    const full = await t.client.call('backup.start', { hostId, domain: lab.name });
    await settled(t, lab.name, full.set.id);

    await guestWrite(lab.name, 0x5a, 512 * MiB, 10 * MiB);
    const plan = await t.client.call('backup.preview', { hostId, domain: lab.name });
    assert.equal(plan.kind, 'incremental', plan.reason);
    assert.equal(plan.setId, full.set.id);
    // The dirty data libvirt reports for the checkpoint (VIR_DOMAIN_CHECKPOINT_XML_SIZE): the 10 MiB, rounded up to the bitmap's granularity.
    assert.equal(plan.diskBytes.length, 1);
    assert.equal(plan.diskBytes[0]!.disk, 'vda');
    assert.ok(plan.bytesToWrite !== null && plan.bytesToWrite >= 10 * MiB && plan.bytesToWrite < 11 * MiB, `bytesToWrite ${plan.bytesToWrite}`);
    assert.equal(plan.diskBytes[0]!.bytes, plan.bytesToWrite);

    const inc = await t.client.call('backup.start', { hostId, domain: lab.name });
    assert.equal(inc.point.kind, 'incremental');
    assert.equal(inc.point.index, 1);
    const set = await settled(t, lab.name, full.set.id, 1);
    const point = set.points[1]!;
    assert.equal(point.status, 'complete', point.reason ?? '');
    assert.equal(point.dataBytes, 10 * MiB);
    const incBytes = (await stat(join(set.folder, point.images[0]!.file))).size;
    assert.ok(incBytes >= 10 * MiB && incBytes < 12 * MiB, `the incremental's file is ${incBytes} bytes`);
    assert.equal(point.images[0]!.backingFile, set.points[0]!.images[0]!.file);
    const verified = await t.client.call("backup.verify", { hostId, domain: lab.name, setId: set.id });
    assert.equal(verified.ok, true, JSON.stringify(verified));

    await virsh(['destroy', lab.name]);
    const at0 = join(folder, 'point0.qcow2');
    const at1 = join(folder, 'point1.qcow2');
    await t.client.call('backup.restore', { hostId, domain: lab.name, setId: set.id, point: 0, disk: 'vda', destination: at0 });
    await t.client.call('backup.restore', { hostId, domain: lab.name, setId: set.id, point: 1, disk: 'vda', destination: at1 });
    assert.equal(await compareImages(at1, lab.layers[lab.layers.length - 1]!), null);
    // Point 0 is the disk before the write: it differs exactly there.
    await runTool('qemu-io', ['-r', '-f', 'qcow2', '-c', `read -P 0 ${512 * MiB} ${10 * MiB}`, at0]);
    await runTool('qemu-io', ['-r', '-f', 'qcow2', '-c', `read -P 0x5a ${512 * MiB} ${10 * MiB}`, at1]);
  });

  it('a backup waits beside a block job on the disk, and a block job is refused beside a backup', async (ctx) => {
    const { t } = await backupCore(ctx);
    const lab = await useLabDomain(ctx, conn, { tag: 'busy', baseDataBytes: 128 * MiB });
    const copy = await t.client.call('job.start', { hostId, domain: lab.name, disk: 'vda', operation: { kind: 'copy', destination: join(lab.dir, 'copy.qcow2') }, bandwidthBytesPerSec: MiB });
    const plan = await t.client.call('backup.preview', { hostId, domain: lab.name });
    assert.equal(plan.refused, null);
    assert.match(plan.waiting ?? '', /has a copy job/);
    const waiting = await t.client.call('backup.start', { hostId, domain: lab.name });
    assert.equal(waiting.jobs[0]?.phase, 'queued');
    // The disk's first abort takes the waiting backup out of the queue, the second aborts the copy.
    assert.equal((await t.client.call('job.abort', { hostId, domain: lab.name, disk: 'vda' })).id, waiting.jobs[0]?.id);
    assert.equal((await settled(t, lab.name, waiting.set.id)).good, false);
    await t.client.call('job.abort', { hostId, domain: lab.name, disk: 'vda' });
    await waitForEnd(t, copy.id);

    const backup = await t.client.call('backup.start', { hostId, domain: lab.name, bandwidthBytesPerSec: MiB });
    const pull = await rejection(t.client.call('job.start', { hostId, domain: lab.name, disk: 'vda', operation: { kind: 'pull' } }));
    assert.equal(pull.kind, 'conflict');
    assert.match(pull.message, /backup job/);
    await t.client.call('job.abort', { hostId, domain: lab.name, disk: 'vda' });
    assert.equal((await settled(t, lab.name, backup.set.id)).good, false);
  });

  it('an aborted backup leaves no set that lists as good, and retention keeps the last good set', async (ctx) => {
    const { t } = await backupCore(ctx);
    const lab = await useLabDomain(ctx, conn, { tag: 'abort', baseDataBytes: 128 * MiB });
    await t.client.call('backup.setRetention', { hostId, domain: lab.name, keepSets: 1 });

    const slow = await t.client.call('backup.start', { hostId, domain: lab.name, bandwidthBytesPerSec: MiB });
    const job = slow.jobs[0]!;
    const twice = await rejection(t.client.call('backup.start', { hostId, domain: lab.name }));
    assert.match(twice.message, /already running/);
    await t.client.call('job.abort', { hostId, domain: lab.name, disk: 'vda' });
    const ended: Job = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'cancelled');
    const aborted = await settled(t, lab.name, slow.set.id);
    assert.equal(aborted.good, false);
    assert.equal(aborted.points[0]?.status, 'cancelled');
    assert.ok(!existsSync(join(aborted.folder, aborted.points[0]!.images[0]!.file)), 'the partial image is gone');
    assert.doesNotMatch(await virsh(['checkpoint-list', lab.name, '--name']), new RegExp(aborted.points[0]!.checkpoint));

    // The next backup is full (the aborted set has nothing to continue), and it is the only good set.
    const first = await t.client.call('backup.start', { hostId, domain: lab.name });
    assert.equal(first.point.kind, 'full');
    assert.equal((await settled(t, lab.name, first.set.id)).good, true);
    let sets = await t.client.call('backup.list', { hostId, domain: lab.name });
    assert.deepEqual(
      sets.map((s) => s.id),
      [first.set.id],
      'retention removed the aborted set',
    );

    const second = await t.client.call('backup.start', { hostId, domain: lab.name, kind: 'full' });
    await settled(t, lab.name, second.set.id);
    sets = await t.client.call('backup.list', { hostId, domain: lab.name });
    assert.deepEqual(
      sets.map((s) => [s.id, s.good]),
      [[second.set.id, true]],
    );
    assert.ok(!existsSync(join(first.set.folder)), 'the older set is gone');
  });
});
