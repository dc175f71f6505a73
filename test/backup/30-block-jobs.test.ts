// Checkpoints and block jobs together on libvirt 9.0: an active commit or a copy with pivot
// between two backups must leave the next incremental correct (restored equal to the disk), or
// make the next backup full and say why. A pull is not here: in this setup QEMU 7.2 segfaulted
// during the pull in two runs of four (the same fault address as crashes of pulls elsewhere on
// these machines), so its case is not settled.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitForEnd } from '../core/engine-harness.ts';
import { libvirt, sweepStaleLabDomains, TEST_URI, useLabDomain, virsh, type Connection } from '../lab/harness.ts';
import { backupCore, compareImages, guestWrite, hostId, MiB, settled } from './backup-harness.ts';

describe('backups beside block jobs', { timeout: 600_000 }, () => {
  let conn: Connection;

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
  });
  after(async () => {
    await conn?.close();
  });

  for (const kind of ['commit', 'copy'] as const) {
    it(`a ${kind} between two backups: the next one restores equal to the disk`, async (ctx) => {
      const { t, folder } = await backupCore(ctx);
      const lab = await useLabDomain(ctx, conn, { tag: `bj-${kind}` });
      const op = kind === 'commit' ? ({ kind, afterReady: 'pivot' } as const) : ({ kind, destination: join(lab.dir, 'copy.qcow2'), afterReady: 'pivot' } as const);
      const full = await t.client.call('backup.start', { hostId, domain: lab.name });
      await settled(t, lab.name, full.set.id);
      await guestWrite(lab.name, 0x5a, 512 * MiB, 10 * MiB);

      const job = await t.client.call('job.start', { hostId, domain: lab.name, disk: 'vda', operation: op, confirm: ['drop-layers'] });
      const ended = await waitForEnd(t, job.id, { timeoutMs: 120_000 });
      assert.equal(ended.phase, 'completed', ended.outcome ?? '');
      await guestWrite(lab.name, 0x6b, 600 * MiB, 5 * MiB);

      const plan = await t.client.call('backup.preview', { hostId, domain: lab.name });
      const inc = await t.client.call('backup.start', { hostId, domain: lab.name });
      const set = await settled(t, lab.name, inc.set.id, inc.point.index);
      const point = set.points.find((p) => p.index === inc.point.index)!;
      assert.equal(point.status, 'complete', point.reason ?? '');
      // libvirt 9.0 carries the checkpoints' bitmaps through both (measured): the incremental holds the 15 MiB written.
      if (point.kind === 'incremental') assert.equal(point.dataBytes, 15 * MiB);
      else assert.match(point.reason ?? '', /refused the incremental/);
      ctx.diagnostic(`after the ${kind}: preview ${plan.kind} (${plan.reason}); took ${point.kind}, ${point.dataBytes} bytes (${point.reason})`);

      const active = (await virsh(['domblklist', lab.name, '--details'])).split('\n').find((l) => l.includes('vda'))!.trim().split(/\s+/).pop()!;
      await virsh(['destroy', lab.name]);
      const restored = join(folder, 'restored.qcow2');
      await t.client.call('backup.restore', { hostId, domain: lab.name, setId: set.id, point: point.index, disk: 'vda', destination: restored });
      assert.equal(await compareImages(restored, active), null);
    });
  }
});
