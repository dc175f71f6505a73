// A real guest writes numbered, fsync'd records to its disk while Strata backs it up, full and
// then incremental: every record the guest reported durable before a backup began is in that
// backup's restored image, and the incremental holds about what the guest wrote between the two.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runTool } from '../../src/main/core/lab/images.ts';
import { checkRecords, guestImagesOrWhyNot, RECORD_BYTES, startWritingGuest } from '../lab/guest.ts';
import { libvirt, sweepStaleLabDomains, TEST_URI, virsh, type Connection } from '../lab/harness.ts';
import { backupCore, hostId, MiB, settled } from './backup-harness.ts';

const RECORDS = 10_240;
/** Records written between the full backup and the incremental: what the incremental must hold. */
const BETWEEN = 300;

const { images, unavailable } = await guestImagesOrWhyNot();

describe('backups of a guest that writes', { timeout: 480_000, skip: unavailable ?? false }, () => {
  let conn: Connection;

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
  });
  after(async () => {
    await conn?.close();
  });

  it('every record acknowledged before a backup began is in its restored image, full and incremental', async (ctx) => {
    const { t, folder } = await backupCore(ctx);
    const guest = await startWritingGuest(ctx, conn, {
      images: images!,
      tag: 'backup-writing-guest',
      // Room for every record the guest may write (40 MiB); the chain's own data does not matter here.
      layout: { virtualSize: 64 * MiB, baseDataBytes: 8 * MiB, overlayDataBytes: MiB },
      records: RECORDS,
    });
    const name = guest.name;
    const writtenNow = guest.written;
    await guest.writtenAtLeast(100, 'the guest to write its first records');

    const beforeFull = await writtenNow();
    const full = await t.client.call('backup.start', { hostId, domain: name });
    const afterFullStart = await writtenNow();
    await settled(t, name, full.set.id);
    await guest.writtenAtLeast(afterFullStart + BETWEEN, `${BETWEEN} more records`);

    const beforeInc = await writtenNow();
    const inc = await t.client.call('backup.start', { hostId, domain: name });
    const afterIncStart = await writtenNow();
    const set = await settled(t, name, full.set.id, inc.point.index);
    const point = set.points[inc.point.index]!;
    assert.equal(point.kind, 'incremental');
    assert.equal(point.status, 'complete', point.reason ?? '');
    await virsh(['destroy', name]);

    ctx.diagnostic(`records: ${beforeFull} before the full backup, ${afterFullStart} after its start, ${beforeInc} before the incremental, ${afterIncStart} after its start; the incremental processed ${point.dataBytes} bytes`);
    // The incremental holds what the guest wrote between the two checkpoints, in 64 KiB clusters.
    // The counts are what the guest reported, and it reports every hundredth record: the disk may be
    // up to LAG records past a count when it is read. So the full's checkpoint lies between
    // beforeFull and afterFullStart + LAG records, the incremental's between beforeInc and
    // afterIncStart + LAG, and the clusters add a partial one at each end.
    const LAG = 100;
    const atLeast = (beforeInc - afterFullStart - LAG) * RECORD_BYTES;
    const atMost = (afterIncStart + LAG - beforeFull) * RECORD_BYTES + 2 * 65536;
    assert.ok(point.dataBytes !== null && point.dataBytes >= atLeast, `incremental ${point.dataBytes} bytes, written at least ${atLeast}`);
    assert.ok(point.dataBytes <= atMost, `incremental ${point.dataBytes} bytes, written at most ${atMost}`);

    for (const [index, reported] of [
      [0, beforeFull],
      [point.index, beforeInc],
    ] as const) {
      const restored = join(folder, `point${index}.qcow2`);
      await t.client.call('backup.restore', { hostId, domain: name, setId: set.id, point: index, disk: 'vda', destination: restored });
      const raw = join(folder, `point${index}.raw`);
      await runTool('qemu-img', ['convert', '-O', 'raw', restored, raw]);
      const records = checkRecords(await readFile(raw), reported);
      assert.deepEqual(records.bad.slice(0, 5), [], `point ${index}: ${records.bad.length} of ${reported} acknowledged records missing or damaged`);
      assert.equal(records.intact, reported);
    }
  });
});
