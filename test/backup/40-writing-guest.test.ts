// A real guest writes numbered, fsync'd records to its disk while Strata backs it up, full and
// then incremental: every record the guest reported durable before a backup began is in that
// backup's restored image, and the incremental holds about what the guest wrote between the two.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBackingChain, makeTraversable, runTool } from '../../src/main/core/lab/images.ts';
import { LAB_MARKER, removeLabDir } from '../../src/main/core/lab/lab.ts';
import { checkRecords, guestDomainXml, guestImages, RECORD_BYTES, serialReport, type GuestImages } from '../faults/guest.ts';
import { LAB_ROOT, libvirt, sweepStaleLabDomains, TEST_URI, uniqueLabName, virsh, waitFor, type Connection } from '../lab/harness.ts';
import { backupCore, hostId, MiB, settled } from './backup-harness.ts';

const VIR_DOMAIN_START_AUTODESTROY = 2;
const RECORDS = 10_240;

let images: GuestImages | null = null;
let unavailable: string | null = null;
try {
  images = await guestImages();
} catch (err) {
  unavailable = `the writing guest cannot be built here: ${err instanceof Error ? err.message : String(err)}`;
  console.log(`SKIPPED: ${unavailable}`);
}

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
    const name = uniqueLabName('backup-writing-guest');
    const dir = join(LAB_ROOT, name);
    await makeTraversable(LAB_ROOT);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, LAB_MARKER), `${name}\n`);
    ctx.after(() => removeLabDir(dir));
    const chain = await createBackingChain({ dir, virtualSize: 128 * MiB, baseDataBytes: 48 * MiB, overlayDataBytes: 8 * MiB });
    const serialLog = join(dir, 'serial.log');
    const domain = await conn.createXML(guestDomainXml({ name, images: images!, diskPath: chain.layers.at(-1)!, serialLog, records: RECORDS }), VIR_DOMAIN_START_AUTODESTROY);
    ctx.after(() => domain.destroy().catch(() => undefined));
    const writtenNow = async (): Promise<number> => {
      const report = await serialReport(serialLog);
      assert.deepEqual(report.errors, [], report.text.slice(-2000));
      return report.written;
    };
    await waitFor(async () => (await writtenNow()) >= 300, { timeoutMs: 120_000, intervalMs: 250, what: 'the guest to write its first records' });

    const beforeFull = await writtenNow();
    const full = await t.client.call('backup.start', { hostId, domain: name });
    const afterFullStart = await writtenNow();
    await settled(t, name, full.set.id);
    await waitFor(async () => (await writtenNow()) >= afterFullStart + 1000, { timeoutMs: 120_000, intervalMs: 250, what: '1,000 more records' });

    const beforeInc = await writtenNow();
    const inc = await t.client.call('backup.start', { hostId, domain: name });
    const afterIncStart = await writtenNow();
    const set = await settled(t, name, full.set.id, inc.point.index);
    const point = set.points[inc.point.index]!;
    assert.equal(point.kind, 'incremental');
    assert.equal(point.status, 'complete', point.reason ?? '');
    await virsh(['destroy', name]);

    const written = (afterIncStart - beforeFull) * RECORD_BYTES;
    ctx.diagnostic(`records: ${beforeFull} before the full backup, ${beforeInc} before the incremental; the incremental processed ${point.dataBytes} bytes`);
    // Written between the two starts: about the records reported between them (a CI run once
    // found 8 of 1,000 fewer than the serial log counted: unexplained, so "about" is 90 %), at most
    // those written from the full's start to the incremental's, in 64 KiB clusters, and one more.
    assert.ok(point.dataBytes !== null && point.dataBytes >= 0.9 * (beforeInc - afterFullStart) * RECORD_BYTES, `incremental ${point.dataBytes} bytes`);
    assert.ok(point.dataBytes <= written + 2 * 65536, `incremental ${point.dataBytes} bytes, written at most ${written}`);

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
