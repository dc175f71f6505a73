// blockCopy on real lab domains, checked against virsh and the images: a copy to a new file with
// its typed `bandwidth` parameter in bytes/s, READY / COPY, then a pivot onto the copy; a copy
// aborted while ready (no pivot); the `granularity` and `buf-size` parameters reaching libvirt
// and QEMU; a SHALLOW copy that keeps the backing chain; and a copy that really fails (ENOSPC on
// a tiny tmpfs), which libvirt reports as FAILED.
//
// libvirt refuses a copy of a persistent domain unless VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB is
// given; lab domains are transient, so both forms are accepted here and both are used.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runTool } from '../../src/main/core/lab/images.ts';
import { findMissingWrites, readBackingChain } from '../lab/image-checks.ts';
import {
  EventRecorder,
  hasJob,
  libvirt,
  suiteLabs,
  sweepStaleLabDomains,
  TEST_URI,
  uniqueLabName,
  virsh,
  virshBlockJobInfo,
  type Connection,
} from '../lab/harness.ts';
import {
  assertLibvirtError,
  copyDestXml,
  jobGone,
  MiB,
  qemuImgInfo,
  rejection,
  virshChain,
  virshDiskXml,
  waitForVirshChain,
} from './block-helpers.ts';

const {
  VIR_DOMAIN_BLOCK_COPY_SHALLOW: COPY_SHALLOW,
  VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB: TRANSIENT_JOB,
  VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES: INFO_BYTES,
  VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES: SPEED_BYTES,
  VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT: PIVOT,
  VIR_DOMAIN_BLOCK_JOB_TYPE_COPY: COPY,
  VIR_DOMAIN_BLOCK_JOB_COMPLETED: COMPLETED,
  VIR_DOMAIN_BLOCK_JOB_FAILED: FAILED,
  VIR_DOMAIN_BLOCK_JOB_CANCELED: CANCELED,
  VIR_DOMAIN_BLOCK_JOB_READY: READY,
  VIR_DOMAIN_EVENT_ID_BLOCK_JOB: BLOCK_JOB,
  VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2: BLOCK_JOB_2,
} = libvirt;

const SMALL = { virtualSize: 64 * MiB, baseDataBytes: MiB, overlayDataBytes: MiB };

describe(`blockCopy on ${TEST_URI}`, () => {
  const labs = suiteLabs();
  let conn: Connection;
  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
  });
  after(() => conn.close());

  test('a copy to a new file: bandwidth param in bytes/s, pivot refused before READY, READY / COPY, pivot onto the copy', async (t) => {
    // The default 1 GiB virtual disk: at 1 byte/s the mirror stops after a first burst
    // (measured: 32 MiB of 1 GiB), so the copy is reliably not ready until the limit is lifted.
    const lab = await labs.use(t, conn, { baseDataBytes: MiB, overlayDataBytes: MiB });
    const active = lab.layers[2];
    assert.ok(active);
    const events = await EventRecorder.register(conn, lab.domain, BLOCK_JOB_2);
    t.after(() => events.dispose());
    const dest = join(lab.dir, 'copy.qcow2');

    assert.equal(await lab.domain.blockCopy('vda', copyDestXml(dest), { bandwidth: 1 }, 0), 0);
    const info = await lab.domain.blockJobInfo('vda', INFO_BYTES);
    assert.ok(hasJob(info), JSON.stringify(info));
    assert.equal(info.type, COPY);
    assert.equal(info.bandwidth, 1, 'the typed parameter is bytes/s (1 MiB/s would read 1048576)');
    // In MiB/s, 1 byte/s rounds up to 1.
    const inMiB = await lab.domain.blockJobInfo('vda');
    assert.ok(hasJob(inMiB));
    assert.equal(inMiB.bandwidth, 1);
    const v = await virshBlockJobInfo(lab.name, 'vda');
    assert.equal(v['type'], 'Block Copy');
    assert.equal(v['bandwidth'], '1');
    // The live XML names the destination as the mirror, not ready yet.
    assert.match(await virshDiskXml(lab.name), new RegExp(`<mirror [^>]*file='${dest}'[^>]*job='copy'`));
    assert.doesNotMatch(await virshDiskXml(lab.name), /ready='yes'/);

    const early = assertLibvirtError(await rejection(lab.domain.blockJobAbort('vda', PIVOT)), 'VIR_ERR_BLOCK_COPY_ACTIVE');
    assert.match(early.message, /not ready for pivot/);

    // A bytes/s speed change applies to the copy as well; then no limit, and it gets ready.
    await lab.domain.blockJobSetSpeed('vda', 4 * MiB, SPEED_BYTES);
    assert.equal((await virshBlockJobInfo(lab.name, 'vda'))['bandwidth'], String(4 * MiB));
    await lab.domain.blockJobSetSpeed('vda', 0);
    const ready = await events.waitFor((e) => e.status === READY, 30_000, 'READY');
    assert.deepEqual([ready.disk, ready.type], ['vda', COPY]);
    assert.match(await virshDiskXml(lab.name), /<mirror [^>]*job='copy'[^>]*ready='yes'/);

    assert.equal(await lab.domain.blockJobAbort('vda', PIVOT), 0);
    const done = await events.waitFor((e) => e.status !== READY, 30_000, 'the pivot to complete');
    assert.deepEqual([done.disk, done.type, done.status], ['vda', COPY, COMPLETED], JSON.stringify(done));
    await jobGone(t, lab.domain, 'the COMPLETED event');
    // The disk's source is now the copy, a flat image with all the data.
    await waitForVirshChain(lab.name, [dest]);
    assert.match(await virsh(['domblklist', lab.name]), new RegExp(`vda\\s+${dest}`));
    await lab.domain.destroy();
    assert.deepEqual(await readBackingChain(dest), [dest]);
    assert.deepEqual(await findMissingWrites(dest, lab.chain.writes), []);
    assert.deepEqual(await readBackingChain(active), lab.layers.toReversed(), 'the old chain is untouched');
  });

  test("a copy aborted while ready (no pivot) ends CANCELED and leaves the chain as it was; 'granularity' and 'buf-size' reach QEMU", async (t) => {
    const lab = await labs.use(t, conn, SMALL);
    const chain = lab.layers.toReversed();
    const events = await EventRecorder.register(conn, lab.domain, BLOCK_JOB_2);
    t.after(() => events.dispose());

    // Values libvirt or QEMU refuse show the parameters are passed on as typed: libvirt itself
    // checks that granularity is a power of two; QEMU checks its range (512 B to 64 MiB).
    const notPow2 = assertLibvirtError(
      await rejection(lab.domain.blockCopy('vda', copyDestXml(join(lab.dir, 'g1.qcow2')), { granularity: 12345 }, TRANSIENT_JOB)),
      'VIR_ERR_INVALID_ARG',
    );
    assert.match(notPow2.message, /granularity must be power of 2/);
    const tooSmall = await rejection(lab.domain.blockCopy('vda', copyDestXml(join(lab.dir, 'g2.qcow2')), { granularity: 256 }, TRANSIENT_JOB));
    assert.ok(tooSmall instanceof libvirt.LibvirtError, String(tooSmall));
    assert.match(tooSmall.message, /blockdev-mirror.*granularity/);
    assert.equal(hasJob(await lab.domain.blockJobInfo('vda')), false, 'no job after the refusals');

    const dest = join(lab.dir, 'copy.qcow2');
    const params = { granularity: 64 * 1024, 'buf-size': 2n * BigInt(MiB), bandwidth: 64n * BigInt(MiB) };
    assert.equal(await lab.domain.blockCopy('vda', copyDestXml(dest), params, TRANSIENT_JOB), 0);
    const ready = await events.waitFor((e) => e.status === READY, 30_000, 'READY');
    assert.deepEqual([ready.disk, ready.type], ['vda', COPY]);

    // Abort without PIVOT: libvirt 9.0 reports CANCELED for a ready copy left behind.
    assert.equal(await lab.domain.blockJobAbort('vda', 0), 0);
    const end = await events.waitFor((e) => e.status !== READY, 30_000, 'the abort to end the copy');
    assert.deepEqual([end.disk, end.type, end.status], ['vda', COPY, CANCELED], JSON.stringify(end));
    await jobGone(t, lab.domain, 'the CANCELED event');
    await waitForVirshChain(lab.name, chain);
    assert.doesNotMatch(await virshDiskXml(lab.name), /<mirror/);
    // libvirt leaves the abandoned copy on disk: a complete, flat image nobody uses.
    assert.ok(existsSync(dest), 'the copy file stays');
    assert.deepEqual(await readBackingChain(dest, { forceShare: true }), [dest]);
  });

  test('a SHALLOW copy copies the active layer only and keeps its backing chain under the copy', async (t) => {
    const lab = await labs.use(t, conn, SMALL);
    const [l0, l1] = lab.layers as [string, string, string];
    const events = await EventRecorder.register(conn, lab.domain, BLOCK_JOB_2);
    t.after(() => events.dispose());
    const dest = join(lab.dir, 'shallow.qcow2');

    assert.equal(await lab.domain.blockCopy('vda', copyDestXml(dest), null, COPY_SHALLOW | TRANSIENT_JOB), 0);
    await events.waitFor((e) => e.status === READY, 30_000, 'READY');
    assert.equal(await lab.domain.blockJobAbort('vda', PIVOT), 0);
    const done = await events.waitFor((e) => e.status !== READY, 30_000, 'the pivot');
    assert.equal(done.status, COMPLETED, JSON.stringify(done));
    await jobGone(t, lab.domain, 'the COMPLETED event');

    await waitForVirshChain(lab.name, [dest, l1, l0]);
    assert.equal((await qemuImgInfo(dest))['backing-filename'], l1);
    await lab.domain.destroy();
    assert.deepEqual(await readBackingChain(dest), [dest, l1, l0]);
    assert.deepEqual(await findMissingWrites(dest, lab.chain.writes), []);
  });

  test('a copy into a 20 MiB tmpfs fails for real (ENOSPC): FAILED / COPY on both block-job events, chain unchanged', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('mounting a tmpfs needs root');
      return;
    }
    // Mounted before the domain starts: QEMU runs in its own mount namespace, and on this
    // machine a mount made after it started is not propagated into it (measured: blockdev-add
    // "Could not open …: No such file or directory"). Outside the lab root, so the lab sweeper
    // never meets a mount point.
    const mnt = join(tmpdir(), `strata-enospc-${uniqueLabName('mnt')}`);
    await mkdir(mnt);
    let mounted = false;
    // One cleanup, in order: the domain (which holds the file), then the mount, then the dir.
    let disposeLab: (() => Promise<void>) | null = null;
    t.after(async () => {
      if (disposeLab) await disposeLab();
      if (mounted) {
        await runTool('umount', [mnt]).catch(() => runTool('umount', ['-l', mnt]));
      }
      await rmdir(mnt);
    });
    try {
      await runTool('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0711', 'tmpfs', mnt]);
      mounted = true;
    } catch (err) {
      t.skip(`cannot mount a tmpfs here: ${String(err)}`);
      return;
    }

    const lab = await labs.use(t, conn, { virtualSize: 64 * MiB, baseDataBytes: 32 * MiB, overlayDataBytes: MiB });
    disposeLab = () => lab.dispose();
    const chain = lab.layers.toReversed();
    const events = await EventRecorder.register(conn, lab.domain, BLOCK_JOB_2);
    const byPath = await EventRecorder.register(conn, lab.domain, BLOCK_JOB);
    t.after(() => events.dispose());
    t.after(() => byPath.dispose());

    const dest = join(mnt, 'copy.qcow2');
    assert.equal(await lab.domain.blockCopy('vda', copyDestXml(dest), null, 0), 0);
    const ev = await events.waitFor(() => true, 30_000, 'the copy to end');
    assert.deepEqual([ev.disk, ev.type, ev.status], ['vda', COPY, FAILED], JSON.stringify(ev));
    const old = await byPath.waitFor(() => true, 15_000, 'the BLOCK_JOB event');
    assert.deepEqual([old.disk, old.type, old.status], [chain[0], COPY, FAILED], JSON.stringify(old));
    // The filesystem really is full.
    assert.match(await runTool('df', ['--output=avail', '-B1', mnt]), /^\s*0\s*$/m);

    await jobGone(t, lab.domain, 'the FAILED event');
    assert.deepEqual(await virshChain(lab.name), chain);
    assert.doesNotMatch(await virshDiskXml(lab.name), /<mirror/);
    // The guest keeps running: a failed copy only ends the job.
    assert.equal((await lab.domain.state())[0], libvirt.VIR_DOMAIN_RUNNING);
    assert.equal(events.events.length, 1, JSON.stringify(events.events));
  });
});
