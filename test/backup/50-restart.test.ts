// A backup whose Strata stopped while it was written: the next Strata on the same data folder
// follows it to its end (libvirt still runs it) and settles its set.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BackupStore } from '../../src/main/core/backup/store.ts';
import { makeTraversable } from '../../src/main/core/lab/images.ts';
import { startTestCore } from '../core/core-harness.ts';
import { waitForJob } from '../core/engine-harness.ts';
import { libvirt, sweepStaleLabDomains, TEST_URI, useLabDomain, type Connection } from '../lab/harness.ts';
import { hostId, MiB, settled } from './backup-harness.ts';

describe('a backup across a restart of Strata', { timeout: 300_000 }, () => {
  let conn: Connection;

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
  });
  after(async () => {
    await conn?.close();
  });

  it('the next Strata follows a backup left running to its end and marks its set good', async (ctx) => {
    const lab = await useLabDomain(ctx, conn, { tag: 'restart', baseDataBytes: 128 * MiB });
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-restart-data-'));
    const folder = await mkdtemp(join(tmpdir(), 'strata-restart-backups-'));
    await makeTraversable(folder);
    ctx.after(() => Promise.all([rm(dataDir, { recursive: true, force: true }), rm(folder, { recursive: true, force: true })]));

    const first = await startTestCore({ uri: TEST_URI, dataDir });
    await first.client.call('backup.setLocation', { hostId, path: folder });
    const started = await first.client.call('backup.start', { hostId, domain: lab.name, bandwidthBytesPerSec: MiB });
    // Closing Strata never stops a job: QEMU goes on writing the backup.
    await first.close();
    const left = (await new BackupStore(folder).list(lab.name))[0];
    assert.equal(left?.points[0]?.status, 'running');
    assert.equal(left?.good, false);

    const second = await startTestCore({ uri: TEST_URI, dataDir });
    ctx.after(() => second.close());
    const found = await waitForJob(second, (j) => j.domain === lab.name && j.type === 'backup', { timeoutMs: 60_000 });
    assert.equal(found.origin, 'external');
    await second.client.call('job.setSpeed', { hostId, domain: lab.name, disk: 'vda', bandwidthBytesPerSec: 0 });
    const set = await settled(second, lab.name, started.set.id, 0, 120_000);
    assert.equal(set.good, true, set.points[0]?.reason ?? '');
    assert.equal(set.points[0]?.status, 'complete');
  });
});
