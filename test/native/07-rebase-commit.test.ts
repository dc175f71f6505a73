// Partial pulls (blockRebase) and commits (blockCommit) on real lab domains, each checked against
// libvirt's own view (virsh dumpxml / virsh blockjob) and against the images afterwards:
// - a rebase onto a middle layer named 'vda[N]' (N from the live XML) and by path;
// - REBASE_BANDWIDTH_BYTES taken as bytes/s, and job info without the bytes flag rounding up;
// - an inactive commit of a middle layer (top and base named): COMPLETED / COMMIT for 'vda';
// - an active commit: pivot refused before READY, READY / ACTIVE_COMMIT, then a pivot that
//   leaves the base as the active layer.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { findMissingWrites, readBackingChain } from '../lab/image-checks.ts';
import {
  EventRecorder,
  hasJob,
  libvirt,
  suiteLabs,
  sweepStaleLabDomains,
  TEST_URI,
  virshBlockJobInfo,
  type Connection,
} from '../lab/harness.ts';
import { assertLibvirtError, indexOf, jobGone, liveLayers, MiB, rejection, virshChain, virshDiskXml, waitForVirshChain } from './block-helpers.ts';

const {
  VIR_DOMAIN_BLOCK_REBASE_BANDWIDTH_BYTES: REBASE_BYTES,
  VIR_DOMAIN_BLOCK_COMMIT_ACTIVE: COMMIT_ACTIVE,
  VIR_DOMAIN_BLOCK_COMMIT_BANDWIDTH_BYTES: COMMIT_BYTES,
  VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES: INFO_BYTES,
  VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT: PIVOT,
  VIR_DOMAIN_BLOCK_JOB_TYPE_PULL: PULL,
  VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT: COMMIT,
  VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT: ACTIVE_COMMIT,
  VIR_DOMAIN_BLOCK_JOB_COMPLETED: COMPLETED,
  VIR_DOMAIN_BLOCK_JOB_READY: READY,
  VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2: BLOCK_JOB_2,
} = libvirt;

/** Four layers (base, 1, 2, active 3) with 1 MiB of data each, on a small virtual disk. */
const FOUR_LAYERS = { layers: 4, virtualSize: 64 * MiB, baseDataBytes: MiB, overlayDataBytes: MiB };

describe(`blockRebase and blockCommit on ${TEST_URI}`, () => {
  const labs = suiteLabs();
  let conn: Connection;
  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
  });
  after(() => conn.close());

  test("a partial pull onto a middle layer named 'vda[N]' leaves [active, base, …] and pulls the layer between", async (t) => {
    const lab = await labs.use(t, conn, FOUR_LAYERS);
    const [l0, l1, l2, l3] = lab.layers as [string, string, string, string];
    const events = await EventRecorder.register(conn, lab.domain, BLOCK_JOB_2);
    t.after(() => events.dispose());

    const before = liveLayers(await lab.domain.XMLDesc());
    assert.deepEqual(
      before.map((l) => l.file),
      [l3, l2, l1, l0],
    );
    const n = indexOf(before, l1);
    assert.equal(await lab.domain.blockRebase('vda', `vda[${n}]`, 0, 0), 0);

    const ev = await events.waitFor((e) => e.status !== READY, 30_000, 'the rebase to end');
    assert.deepEqual([ev.disk, ev.type, ev.status], ['vda', PULL, COMPLETED], JSON.stringify(ev));
    await jobGone(t, lab.domain, 'the COMPLETED event');
    // libvirt's view: layer 2 is gone, layer 1 is now the active layer's backing file.
    await waitForVirshChain(lab.name, [l3, l1, l0]);

    // The images agree, and layer 2's data now lives in the active layer (nothing else in the
    // chain has it). Read after QEMU is gone (see 04-block-jobs: a shared read misses cached data).
    await lab.domain.destroy();
    assert.deepEqual(await readBackingChain(l3), [l3, l1, l0]);
    assert.deepEqual(await findMissingWrites(l3, lab.chain.writes), []);
  });

  test('a partial pull with the base as a path and REBASE_BANDWIDTH_BYTES: the limit is in bytes/s (virsh agrees)', async (t) => {
    // 8 MiB in layer 2 at 1.5 MiB/s keeps the job running for seconds.
    const lab = await labs.use(t, conn, { ...FOUR_LAYERS, overlayDataBytes: 8 * MiB });
    const [l0, l1, , l3] = lab.layers as [string, string, string, string];
    const events = await EventRecorder.register(conn, lab.domain, BLOCK_JOB_2);
    t.after(() => events.dispose());

    const limit = 1536 * 1024;
    assert.equal(await lab.domain.blockRebase('vda', l1, limit, REBASE_BYTES), 0);
    const info = await lab.domain.blockJobInfo('vda', INFO_BYTES);
    assert.ok(hasJob(info), JSON.stringify(info));
    assert.equal(info.type, PULL);
    assert.equal(info.bandwidth, limit, 'bytes in, bytes out');
    // Without the bytes flag libvirt answers in MiB/s, rounded up: 1.5 MiB/s reads 2.
    const inMiB = await lab.domain.blockJobInfo('vda');
    assert.ok(hasJob(inMiB));
    assert.equal(inMiB.bandwidth, 2);
    const v = await virshBlockJobInfo(lab.name, 'vda');
    assert.equal(v['type'], 'Block Pull');
    assert.equal(v['bandwidth'], String(limit));
    if (events.events.length > 0) t.diagnostic(`events while checking the limit: ${JSON.stringify(events.events)}`);

    // Lift the limit; the pull then finishes onto layer 1.
    await lab.domain.blockJobSetSpeed('vda', 0);
    const ev = await events.waitFor(() => true, 30_000, 'the rebase to end');
    assert.deepEqual([ev.disk, ev.type, ev.status], ['vda', PULL, COMPLETED], JSON.stringify(ev));
    await jobGone(t, lab.domain, 'the COMPLETED event');
    await waitForVirshChain(lab.name, [l3, l1, l0]);
  });

  test('an inactive commit of a middle layer (top and base named): COMPLETED / COMMIT for vda, the layer merged down', async (t) => {
    const lab = await labs.use(t, conn, FOUR_LAYERS);
    const [l0, l1, l2, l3] = lab.layers as [string, string, string, string];
    const events = await EventRecorder.register(conn, lab.domain, BLOCK_JOB_2);
    t.after(() => events.dispose());

    const layers = liveLayers(await lab.domain.XMLDesc());
    const top = `vda[${indexOf(layers, l2)}]`;
    const base = `vda[${indexOf(layers, l1)}]`;
    assert.equal(await lab.domain.blockCommit('vda', base, top, 0, 0), 0);

    const ev = await events.waitFor(() => true, 30_000, 'the commit to end');
    assert.equal(ev.disk, 'vda');
    assert.equal(ev.type, COMMIT, `type ${ev.type}`);
    assert.equal(ev.status, COMPLETED, `status ${ev.status}`);
    await jobGone(t, lab.domain, 'the COMPLETED event');
    await waitForVirshChain(lab.name, [l3, l1, l0]);
    assert.equal(events.events.length, 1, JSON.stringify(events.events));

    // Layer 2's data went down into layer 1 (layer 1's own chain, without layer 2, has it).
    await lab.domain.destroy();
    assert.deepEqual(await readBackingChain(l3), [l3, l1, l0]);
    const layer2Write = lab.chain.writes[2];
    assert.ok(layer2Write);
    assert.deepEqual(await findMissingWrites(l1, [layer2Write]), []);
    assert.deepEqual(await findMissingWrites(l3, lab.chain.writes), []);
  });

  test('an active commit: pivot before READY is refused, READY / ACTIVE_COMMIT, then a pivot makes the base the active layer', async (t) => {
    // 24 MiB in each overlay: at 1 byte/s the mirror copies a first burst (measured: 32 MiB) and
    // then waits, so with 48 MiB to commit the job is reliably not ready. With 1 MiB overlays it
    // was ready within 300 ms in 3 of 4 tries, even at 1 byte/s.
    const lab = await labs.use(t, conn, { virtualSize: 64 * MiB, baseDataBytes: MiB, overlayDataBytes: 24 * MiB });
    const [l0, l1, l2] = lab.layers as [string, string, string];
    const events = await EventRecorder.register(conn, lab.domain, BLOCK_JOB_2);
    t.after(() => events.dispose());

    // The base is named by its path.
    assert.equal(await lab.domain.blockCommit('vda', l0, null, 1, COMMIT_ACTIVE | COMMIT_BYTES), 0);
    const info = await lab.domain.blockJobInfo('vda', INFO_BYTES);
    assert.ok(hasJob(info), JSON.stringify(info));
    assert.equal(info.type, ACTIVE_COMMIT);
    assert.equal(info.bandwidth, 1);
    assert.equal((await virshBlockJobInfo(lab.name, 'vda'))['type'], 'Active Block Commit');

    // libvirt 9.0 refuses the early pivot with VIR_ERR_BLOCK_COPY_ACTIVE ("not ready for pivot
    // yet"), from the QEMU driver; the job goes on.
    const early = assertLibvirtError(await rejection(lab.domain.blockJobAbort('vda', PIVOT)), 'VIR_ERR_BLOCK_COPY_ACTIVE');
    assert.equal(early.domain, 'VIR_FROM_QEMU');
    assert.match(early.message, /not ready for pivot/);
    assert.ok(hasJob(await lab.domain.blockJobInfo('vda')), 'the refused pivot left the job running');
    assert.doesNotMatch(await virshDiskXml(lab.name), /ready='yes'/);

    await lab.domain.blockJobSetSpeed('vda', 0);
    const ready = await events.waitFor((e) => e.status === READY, 30_000, 'READY');
    assert.deepEqual([ready.disk, ready.type], ['vda', ACTIVE_COMMIT]);
    // libvirt's view of the ready job: a mirror onto the base, ready='yes'.
    const disk = await virshDiskXml(lab.name);
    assert.match(disk, /<mirror [^>]*job='active-commit'[^>]*ready='yes'/);
    assert.match(disk, new RegExp(`<mirror[\\s\\S]*<source file='${l0}'`));

    assert.equal(await lab.domain.blockJobAbort('vda', PIVOT), 0);
    const done = await events.waitFor((e) => e.status !== READY, 30_000, 'the pivot to complete');
    assert.deepEqual([done.disk, done.type, done.status], ['vda', ACTIVE_COMMIT, COMPLETED], JSON.stringify(done));
    await jobGone(t, lab.domain, 'the COMPLETED event');
    // The base is now the active layer, alone in the chain.
    await waitForVirshChain(lab.name, [l0]);
    assert.deepEqual(await virshChain(lab.name), [l0]);
    assert.deepEqual(
      events.events.map((e) => e.status),
      [READY, COMPLETED],
    );

    await lab.domain.destroy();
    assert.deepEqual(await readBackingChain(l0), [l0]);
    assert.deepEqual(await findMissingWrites(l0, lab.chain.writes), []);
    // The committed-from layers are still on disk (no DELETE flag).
    assert.deepEqual(await readBackingChain(l2), [l2, l1, l0]);
  });
});
