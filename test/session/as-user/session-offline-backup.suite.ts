// Run as an ordinary user (never root) against that user's own qemu:///session, by
// test/session/20-as-user.test.ts: an offline pull on a shut-off persistent domain of the
// session, run by qemu-storage-daemon as this user, and a full push backup of a running session
// domain into the default backup folder under the user's private data folder, verified and
// restored equal to the disk.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultHostId as hostId } from '../../../src/main/core/api/core.ts';
import { definedSource } from '../../../src/main/core/offline/domain-definition.ts';
import { compareImages, settled } from '../../backup/backup-harness.ts';
import { waitForEnd } from '../../core/engine-harness.ts';
import { startTestCore, type TestCore } from '../../core/core-harness.ts';
import { libvirt, sweepStaleLabDomains, TEST_URI, useLabDomain, virsh, type Connection } from '../../lab/harness.ts';
import { assertChainClean, assertSameData, daemonsUnder, makeChain, sweepStaleDefinedDomains, useDefinedDomain, useLabDir } from '../../offline/offline-harness.ts';

const uid = process.getuid?.() ?? 0;
assert.notEqual(uid, 0, 'these tests are for an ordinary user: 20-as-user.test.ts runs them as one');
assert.equal(TEST_URI, 'qemu:///session', 'run with STRATA_TEST_URI=qemu:///session');

describe("offline work and backups on an ordinary user's own qemu:///session", { timeout: 150_000 }, () => {
  let conn: Connection | undefined;
  let core: TestCore | undefined;
  let dataDir = '';
  before(async () => {
    await sweepStaleLabDomains();
    await sweepStaleDefinedDomains();
    conn = await libvirt.open(TEST_URI);
    // The data folder as Strata makes it (0700) inside the private home: the backup folder's
    // default is under it, which only a QEMU running as this user can enter.
    dataDir = await mkdtemp(join(homedir(), '.strata-data-'));
    core = await startTestCore({ uri: TEST_URI, dataDir });
  });
  after(async () => {
    await core?.close();
    await conn?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('pulls the chain of a shut-off domain through qemu-storage-daemon as this user, and the definition names the result', async (ctx) => {
    const dir = await useLabDir(ctx, 'session-offline');
    const chain = await makeChain(dir);
    const name = await useDefinedDomain(ctx, dir, chain.active, 'session-pull');
    const detail = await core!.client.call('domain.get', { hostId, domain: name });
    assert.equal(detail.state, 'shutoff');
    assert.deepEqual(detail.disks[0]!.chain.map((l) => l.path), [...chain.layers].reverse());
    const job = await core!.client.call('job.start', { hostId, domain: name, disk: 'vda', operation: { kind: 'pull' }, bandwidthBytesPerSec: 0, confirm: [], whenBusy: 'refuse' });
    assert.equal(job.engine, 'qemu-storage-daemon');
    const ended = await waitForEnd(core!, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.equal(definedSource(await virsh(['dumpxml', '--inactive', name]), 'vda').path, chain.active);
    assert.deepEqual(await assertChainClean(chain.active), [chain.active]);
    await assertSameData(chain, chain.active);
    assert.equal((await stat(chain.active)).uid, uid);
    assert.deepEqual(await daemonsUnder(dir), [], 'no qemu-storage-daemon outlives the job');
  });

  it('backs up a running domain into the default folder under the private data folder, verifies it and restores it equal to the disk', async (ctx) => {
    const lab = await useLabDomain(ctx, conn!, { tag: 'session-backup', virtualSize: 64 * 1024 * 1024, baseDataBytes: 2 * 1024 * 1024, overlayDataBytes: 1024 * 1024 });
    const started = await core!.client.call('backup.start', { hostId, domain: lab.name });
    assert.equal(started.point.kind, 'full');
    const ended = await waitForEnd(core!, started.jobs[0]!.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    const set = await settled(core!, lab.name, started.set.id);
    assert.equal(set.good, true, set.problem ?? '');
    assert.ok(set.folder.startsWith(join(dataDir, 'backups')), `${set.folder} is in the data folder's backups`);
    const verified = await core!.client.call('backup.verify', { hostId, domain: lab.name, setId: set.id });
    assert.equal(verified.ok, true, JSON.stringify(verified));

    await virsh(['destroy', lab.name]);
    const restored = join(dataDir, 'restored.qcow2');
    const r = await core!.client.call('backup.restore', { hostId, domain: lab.name, setId: set.id, point: 0, disk: 'vda', destination: restored });
    assert.equal(r.path, restored);
    assert.equal((await stat(restored)).uid, uid);
    assert.equal(await compareImages(restored, lab.layers[lab.layers.length - 1]!), null);
  });
});
