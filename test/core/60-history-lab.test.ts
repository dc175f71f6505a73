// The job history (kept in the data folder across runs, exported as JSON) and the practice lab
// offered to newcomers (made and removed in one call each, leaving nothing behind).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { makeTraversable } from '../../src/main/core/lab/images.ts';
import type { Job } from '../../src/shared/model.ts';
import { startTestCore } from './core-harness.ts';
import { liveChain, MiB, rejection, smallChain, waitForEnd } from './engine-harness.ts';
import { libvirt, sweepStaleLabDomains, TEST_URI, useLabDomain, virsh, type Connection } from '../lab/harness.ts';

describe('history and the practice lab', { timeout: 120_000 }, () => {
  let conn: Connection;

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
  });
  after(async () => {
    await conn?.close();
  });

  it('finished jobs are in history.list, survive a new core on the same data dir, and are exported as JSON', async (ctx) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-history-'));
    ctx.after(() => rm(dataDir, { recursive: true, force: true }));
    const l = await useLabDomain(ctx, conn, smallChain);
    const ref = { hostId, domain: l.name, disk: 'vda' };

    let cancelled: Job;
    let completed: Job;
    {
      const t = await startTestCore({ uri: TEST_URI, dataDir });
      try {
        const slow = await t.client.call('job.start', { ...ref, operation: { kind: 'pull' }, bandwidthBytesPerSec: MiB });
        await t.client.call('job.abort', ref);
        cancelled = await waitForEnd(t, slow.id);
        assert.equal(cancelled.phase, 'cancelled');
        const full = await t.client.call('job.start', { ...ref, operation: { kind: 'pull' } });
        completed = await waitForEnd(t, full.id);
        assert.equal(completed.phase, 'completed', completed.outcome ?? '');
        assert.deepEqual(await liveChain(l.name), [l.layers[2]]);

        const listed = (await t.client.call('history.list', {})).filter((j) => j.domain === l.name);
        assert.deepEqual(
          listed.map((j) => [j.id, j.phase, j.outcome]),
          [
            [cancelled.id, 'cancelled', 'cancelled'],
            [completed.id, 'completed', 'completed'],
          ],
        );
        assert.ok(listed.every((j) => j.endedAt !== null && j.endedAt >= j.startedAt && j.origin === 'strata'));
      } finally {
        // Closed right after the last job ended: what it wrote must be complete.
        await t.close();
      }
    }

    const again = await startTestCore({ uri: TEST_URI, dataDir });
    try {
      const kept = (await again.client.call('history.list', {})).filter((j) => j.domain === l.name);
      assert.deepEqual(kept, [cancelled, completed]);

      const exported = await again.client.call('history.export', {});
      assert.match(exported.fileName, /^strata-history-\d{4}-\d{2}-\d{2}T[\d-]+Z\.json$/);
      const doc = JSON.parse(exported.json) as { exportedAt: unknown; jobs: Job[] };
      assert.equal(typeof doc.exportedAt, 'string');
      assert.ok(!Number.isNaN(Date.parse(String(doc.exportedAt))));
      assert.deepEqual(
        doc.jobs.filter((j) => j.domain === l.name),
        [cancelled, completed],
      );
    } finally {
      await again.close();
    }
  });

  it('lab.create makes a running practice domain on a 3-layer chain; lab.remove leaves no domain and no file', async (ctx) => {
    const labRoot = await mkdtemp(join(tmpdir(), 'strata-practice-'));
    // QEMU runs as libvirt-qemu: the images' folder must be searchable by it (mkdtemp makes 0700).
    await makeTraversable(labRoot);
    ctx.after(async () => {
      // Whatever happened, no practice domain of this folder outlives the test.
      for (const dom of await conn.listAllDomains()) {
        if (!/^strata-lab-\d+$/.test(dom.name())) continue;
        const xml = await dom.XMLDesc(0).catch(() => '');
        if (xml.includes(`dir="${labRoot}/`)) await dom.destroy().catch(() => undefined);
      }
      await rm(labRoot, { recursive: true, force: true });
    });
    const t = await startTestCore({ uri: TEST_URI, labRoot });
    ctx.after(() => t.close());

    const lab = await t.client.call('lab.create', { hostId });
    assert.match(lab.name, /^strata-lab-\d+$/);
    assert.equal(lab.state, 'running');
    const chain = lab.disks.find((d) => d.target === 'vda')?.chain ?? [];
    assert.equal(chain.length, 3);
    for (const layer of chain) {
      assert.ok(layer.path.startsWith(join(labRoot, lab.name) + '/'), `${layer.path} is in the lab's folder`);
      assert.ok(existsSync(layer.path));
      assert.ok(layer.index !== null);
    }
    assert.deepEqual(await liveChain(lab.name), chain.map((l) => l.path));
    assert.ok((await t.client.call('domains.list', { hostId })).some((d) => d.name === lab.name));

    const notALab = await rejection(t.client.call('lab.remove', { hostId, domain: 'some-other-domain' }));
    assert.equal(notALab.kind, 'invalid-request');
    assert.match(notALab.message, /not a practice lab/);

    assert.deepEqual(await t.client.call('lab.remove', { hostId, domain: lab.name }), { removed: lab.name });
    assert.ok(!(await t.client.call('domains.list', { hostId })).some((d) => d.name === lab.name));
    await assert.rejects(virsh(['dominfo', lab.name]), /failed to get domain/);
    assert.deepEqual(await readdir(labRoot), [], 'no file is left in the lab root');
  });
});
