// A real guest writes numbered, fsync'd records to its disk while Strata runs a throttled pull, a
// snapshot, an active commit with pivot and a copy with pivot under it, one after the other. Once
// it is stopped, every record it reported durable is in the final image, intact, and every block
// it never wrote still holds what the lab's chain had there before.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { runTool, type LayerWrite } from '../../src/main/core/lab/images.ts';
import { isFinished } from '../../src/shared/model.ts';
import { engineSuite, jobEvents, liveChain, MiB, paths, previewAndStart, waitForEnd, waitForJob } from '../core/engine-harness.ts';
import { waitFor } from '../lab/harness.ts';
import { checkImagesIn, stopDomain } from './fault-harness.ts';
import { checkRecords, guestImagesOrWhyNot, RECORD_BYTES, startWritingGuest } from '../lab/guest.ts';

// The guest writes from offset 0; the lab's data (24 MiB of base, 4 MiB per overlay) reaches
// beyond what it writes in the test (some MiB), so blocks it never wrote still carry the layers'
// patterns. All the records the guest may write (40 MiB) fit in the disk.
const layout = { virtualSize: 64 * MiB, baseDataBytes: 24 * MiB, overlayDataBytes: 4 * MiB } as const;
const RECORDS = 10_240;
/** Records the guest writes under each job before it is let finish. */
const RECORDS_UNDER_JOB = 100;

const { images, unavailable } = await guestImagesOrWhyNot();

/** Offsets of `raw` from `from` on that do not hold the bytes the lab's writes put there (or zeros beyond). */
function unwrittenChanged(raw: Buffer, from: number, writes: readonly LayerWrite[]): string[] {
  const wrong: string[] = [];
  const expectedAt = (offset: number): number => {
    const w = writes.find((x) => offset >= x.offset && offset < x.offset + x.length);
    return w ? w.pattern : 0;
  };
  for (let off = from; off < raw.length; off += RECORD_BYTES) {
    const want = expectedAt(off);
    const block = raw.subarray(off, off + RECORD_BYTES);
    if (block.some((b) => b !== want)) wrong.push(`${off}: expected 0x${want.toString(16)}, found ${JSON.stringify(block.subarray(0, 16).toString('latin1'))}`);
    if (wrong.length >= 5) break;
  }
  return wrong;
}

describe('a guest writing while jobs run', { timeout: 480_000, skip: unavailable ?? false }, () => {
  const t = engineSuite();

  it('pull, snapshot, active commit with pivot and copy with pivot lose no record and no block', async (ctx) => {
    const guest = await startWritingGuest(ctx, t.conn, { images: images!, tag: 'writing-guest', layout, records: RECORDS });
    const { name, dir, chain } = guest;
    const ref = { hostId, domain: name, disk: 'vda' };
    const writtenNow = guest.written;
    const started = Date.now();
    await guest.writtenAtLeast(100, 'the guest to write its first records');
    ctx.diagnostic(`guest writing ${Date.now() - started} ms after start`);
    // Each job runs until the guest has written under it, however slowly the machine lets it write.
    const writtenUnder = (jobId: string, from: number) =>
      waitFor(
        async () => {
          const ended = jobEvents(t).find((j) => j.id === jobId && isFinished(j));
          assert.equal(ended, undefined, `the job ended before the guest wrote ${RECORDS_UNDER_JOB} records under it`);
          return (await writtenNow()) >= from + RECORDS_UNDER_JOB;
        },
        { timeoutMs: 60_000, intervalMs: 100, what: `the guest to write ${RECORDS_UNDER_JOB} records while the job runs` },
      );

    // 32 MiB of data at 1 MiB/s: the pull outlasts the records waited for, then runs unlimited.
    const pull = await previewAndStart(t.client, ref, { kind: 'pull' }, { bandwidthBytesPerSec: MiB });
    const atPullStart = await writtenNow();
    await writtenUnder(pull.job.id, atPullStart);
    await t.client.call('job.setSpeed', { ...ref, bandwidthBytesPerSec: 0 });
    const pulled = await waitForEnd(t, pull.job.id, { timeoutMs: 60_000 });
    assert.equal(pulled.phase, 'completed', pulled.outcome ?? '');
    assert.deepEqual(await liveChain(name), paths(pull.preview.after));
    const duringPull = (await writtenNow()) - atPullStart;
    ctx.diagnostic(`pull: ${duringPull} records written while it ran`);
    assert.ok(duringPull >= RECORDS_UNDER_JOB, `the guest wrote during the pull (${duringPull} records)`);

    const snapshot = join(dir, 'snap.qcow2');
    const snapped = await t.client.call('disk.snapshot', { ...ref, destination: snapshot });
    assert.equal(snapped.chain[0]?.path, snapshot);
    await guest.writtenAtLeast(atPullStart + duringPull + 200, 'records in the new layer');

    // 2 MiB/s, over twice what the guest writes: the commit converges while records keep coming.
    // It waits at ready (the mirror keeps up with the guest) until the guest has written under it.
    const atCommit = await writtenNow();
    const commit = await previewAndStart(t.client, ref, { kind: 'commit', afterReady: 'wait' }, { confirm: ['drop-layers'], bandwidthBytesPerSec: 2 * MiB });
    await writtenUnder(commit.job.id, atCommit);
    await waitForJob(t, (j) => j.id === commit.job.id && j.phase === 'ready', { timeoutMs: 60_000, what: 'the commit to be ready' });
    await t.client.call('job.pivot', ref);
    const committed = await waitForEnd(t, commit.job.id, { timeoutMs: 60_000 });
    assert.equal(committed.phase, 'completed', committed.outcome ?? '');
    assert.deepEqual(await liveChain(name), [chain.layers.at(-1)]);
    const duringCommit = (await writtenNow()) - atCommit;
    ctx.diagnostic(`active commit: ${duringCommit} records written while it ran`);
    assert.ok(duringCommit >= RECORDS_UNDER_JOB, `the guest wrote during the commit (${duringCommit} records)`);

    const copy = join(dir, 'copy.qcow2');
    const atCopy = await writtenNow();
    const copied = await previewAndStart(t.client, ref, { kind: 'copy', destination: copy, afterReady: 'wait' }, { bandwidthBytesPerSec: 16 * MiB });
    await writtenUnder(copied.job.id, atCopy);
    // Written under the copy while it ran: the rest may go as fast as it can.
    await t.client.call('job.setSpeed', { ...ref, bandwidthBytesPerSec: 0 });
    await waitForJob(t, (j) => j.id === copied.job.id && j.phase === 'ready', { timeoutMs: 90_000, what: 'the copy to be ready' });
    await t.client.call('job.pivot', ref);
    const copyEnded = await waitForEnd(t, copied.job.id, { timeoutMs: 90_000 });
    assert.equal(copyEnded.phase, 'completed', copyEnded.outcome ?? '');
    assert.deepEqual(await liveChain(name), [copy]);
    const duringCopy = (await writtenNow()) - atCopy;
    ctx.diagnostic(`copy: ${duringCopy} records written while it ran`);
    assert.ok(duringCopy >= RECORDS_UNDER_JOB, `the guest wrote during the copy (${duringCopy} records)`);
    await guest.writtenAtLeast(atCopy + duringCopy + 100, 'records on the copy after the pivot');

    await stopDomain(name);
    // Read after the stop: every record reported before QEMU exited was fsync'd by the guest.
    const reported = await writtenNow();
    const raw = join(dir, 'final.raw');
    await runTool('qemu-img', ['convert', '-O', 'raw', copy, raw]);
    const bytes = await readFile(raw);
    const records = checkRecords(bytes, reported);
    console.log(
      `writing guest: ${reported} records reported durable, ${records.intact} found intact (+${records.beyond} written after the last report), ` +
        `${(bytes.length - records.writtenEnd) / MiB} MiB of unwritten blocks checked against the chain's patterns`,
    );
    assert.deepEqual(records.bad.slice(0, 5), [], `${records.bad.length} reported records missing or damaged`);
    assert.equal(records.intact, reported);
    // The block right after the last intact record may have been in flight when QEMU stopped.
    assert.deepEqual(unwrittenChanged(bytes, records.writtenEnd + RECORD_BYTES, chain.writes), []);
    const { failures } = await checkImagesIn(dir);
    assert.deepEqual(failures, []);
  });
});
