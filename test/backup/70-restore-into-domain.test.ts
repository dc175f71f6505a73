// Restore as a job, and into a shut-off domain: the offline engine writes the point into a new
// image (type 'restore' in jobs and history), the domain's definition is switched to it with
// every other byte kept, and the domain starts on it, which holds the backed-up data. The old chain
// stays unless its files are named for deletion; an aborted restore leaves no image and the
// definition as it was; a restore waits in the host's queue when there is no room; one a stopped
// Strata left is stopped by the next, its image removed; a running domain is refused.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { definedSource } from '../../src/main/core/offline/domain-definition.ts';
import { makeTraversable, runTool } from '../../src/main/core/lab/images.ts';
import { rejection, waitForEnd, waitForJob } from '../core/engine-harness.ts';
import { startTestCore, type TestCore } from '../core/core-harness.ts';
import { TEST_URI } from '../lab/harness.ts';
import { assertSameData, makeChain, sweepStaleDefinedDomains, useDefinedDomain, useLabDir, virsh, type TestChain } from '../offline/offline-harness.ts';
import { backupCore, hostId, MiB, settled } from './backup-harness.ts';

const inactiveXml = (name: string): Promise<string> => virsh(['dumpxml', '--inactive', name]);

/** A shut-off domain on a small chain, backed up in full, then written to so the disk differs from the set. */
async function backedUp(ctx: TestContext, t: TestCore, tag: string, writes?: [number, number][][]): Promise<{ name: string; chain: TestChain; setId: string; dir: string }> {
  const dir = await useLabDir(ctx, tag);
  const chain = await makeChain(dir, writes ? { writes } : {});
  const name = await useDefinedDomain(ctx, dir, chain.active, tag);
  const started = await t.client.call('backup.start', { hostId, domain: name });
  const set = await settled(t, name, started.set.id);
  assert.equal(set.good, true, set.problem ?? '');
  await runTool('qemu-io', ['-f', 'qcow2', '-c', `write -P 0xee 0 ${MiB}`, chain.active]);
  return { name, chain, setId: set.id, dir };
}

describe('restore into a shut-off domain', { timeout: 300_000 }, () => {
  before(async () => {
    await sweepStaleDefinedDomains();
  });

  it('switches the disk to the restored image, which the domain starts on and which holds the backed-up data; the old chain is kept; running, it is refused', async (ctx) => {
    const { t } = await backupCore(ctx);
    const { name, chain, setId } = await backedUp(ctx, t, 'rs-into');
    const xmlBefore = await inactiveXml(name);

    const plan = await t.client.call('backup.restorePreview', { hostId, domain: name, setId, point: 0, disk: 'vda', into: 'domain' });
    assert.equal(plan.refused, null);
    assert.deepEqual(plan.oldChain, [...chain.layers].reverse());
    assert.deepEqual(plan.deletable, plan.oldChain);
    assert.ok(plan.destination.startsWith(`${chain.dir}/${name}-vda-restored-`), plan.destination);
    assert.ok(plan.definition !== null && plan.definition.before.some((l) => l.includes(chain.active)) && plan.definition.after.some((l) => l.includes(plan.destination)), JSON.stringify(plan.definition));

    const r = await t.client.call('backup.restore', { hostId, domain: name, setId, point: 0, disk: 'vda', into: 'domain' });
    assert.equal(r.job.type, 'restore');
    assert.equal(r.job.engine, 'qemu-storage-daemon');
    assert.equal(r.job.phase, 'completed', r.job.outcome ?? '');
    assert.equal(r.path, plan.destination);
    assert.deepEqual(r.deleted, []);
    assert.ok((await t.client.call('history.list', {})).some((j) => j.id === r.job.id && j.type === 'restore' && j.phase === 'completed'));

    const xmlAfter = await inactiveXml(name);
    assert.equal(definedSource(xmlAfter, 'vda').path, r.path);
    assert.equal(xmlAfter.replace(r.path, chain.active), xmlBefore, 'only the source file changed in the definition');
    for (const layer of chain.layers) assert.ok(existsSync(layer), `${layer} is kept`);
    await assertSameData(chain, r.path);

    // QEMU opens the restored image; its data is read back once QEMU has stopped.
    await virsh(['start', name]);
    assert.match(await virsh(['domblklist', name]), new RegExp(`vda\\s+${r.path.replaceAll('.', '\\.')}`));
    // Running, it is refused, with what to do instead.
    const running = await t.client.call('backup.restorePreview', { hostId, domain: name, setId, point: 0, disk: 'vda', into: 'domain' });
    assert.match(running.refused ?? '', /is running: .*Shut it down, or restore to a new file/);
    const refused = await rejection(t.client.call('backup.restore', { hostId, domain: name, setId, point: 0, disk: 'vda', into: 'domain' }));
    assert.equal(refused.kind, 'conflict');
    assert.match(refused.message, /Shut it down, or restore to a new file/);
    assert.ok(!existsSync(running.destination));
    await virsh(['destroy', name]);
    await assertSameData(chain, r.path);
  });

  it('deletes the old chain once the switch is made, when its files were named, but never a base another shut-off domain stands on', async (ctx) => {
    const { t } = await backupCore(ctx);
    const { name, chain, setId, dir } = await backedUp(ctx, t, 'rs-del');
    // Another shut-off domain on the same base: its definition names only its own overlay.
    const base = chain.layers[0]!;
    const overlay = join(dir, 'other.qcow2');
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay]);
    const other = await useDefinedDomain(ctx, dir, overlay, 'rs-del-other');
    const plan = await t.client.call('backup.restorePreview', { hostId, domain: name, setId, point: 0, disk: 'vda', into: 'domain' });
    assert.deepEqual(plan.sharedWith, [{ path: base, domains: [other] }]);
    assert.deepEqual(plan.deletable, plan.oldChain.filter((f) => f !== base));
    const wrong = await rejection(t.client.call('backup.restore', { hostId, domain: name, setId, point: 0, disk: 'vda', into: 'domain', deleteOldChain: ['/etc/hostname'] }));
    assert.equal(wrong.kind, 'conflict');
    assert.match(wrong.message, /does not delete/);

    const r = await t.client.call('backup.restore', { hostId, domain: name, setId, point: 0, disk: 'vda', into: 'domain', deleteOldChain: plan.deletable });
    assert.equal(r.job.phase, 'completed', r.job.outcome ?? '');
    assert.deepEqual([...r.deleted].sort(), chain.layers.slice(1).sort());
    for (const layer of chain.layers.slice(1)) assert.ok(!existsSync(layer), `${layer} is gone`);
    assert.ok(existsSync(base), `${base} is kept for ${other}`);
    assert.equal(definedSource(await inactiveXml(name), 'vda').path, r.path);
    await assertSameData(chain, r.path);
  });

  it('an aborted restore leaves no image and the definition unchanged', async (ctx) => {
    const { t } = await backupCore(ctx);
    const { name, chain, setId, dir } = await backedUp(ctx, t, 'rs-abort', [[[0, 24 * MiB]], [[24 * MiB, 8 * MiB]]]);
    const xmlBefore = await inactiveXml(name);
    const r = await t.client.call('backup.restore', { hostId, domain: name, setId, point: 0, disk: 'vda', into: 'domain', bandwidthBytesPerSec: MiB, wait: false });
    assert.equal(r.job.type, 'restore');
    assert.equal(r.bytes, null);
    await t.client.call('job.abort', { hostId, domain: name, disk: 'vda' });
    const ended = await waitForEnd(t, r.job.id);
    assert.equal(ended.phase, 'cancelled', ended.outcome ?? '');
    assert.match(ended.outcome ?? '', /partial image was removed/);
    assert.ok(!existsSync(r.path), 'no restored image');
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('restor')), [], 'no partial file either');
    assert.equal(await inactiveXml(name), xmlBefore);
    for (const layer of chain.layers) assert.ok(existsSync(layer));
  });

  it('waits in the queue while the host has no room, and starts when there is', async (ctx) => {
    const { t, folder } = await backupCore(ctx);
    const a = await backedUp(ctx, t, 'rs-q1', [[[0, 24 * MiB]]]);
    const b = await backedUp(ctx, t, 'rs-q2', [[[0, 4 * MiB]]]);
    await t.client.call('hosts.setLimits', { hostId, maxConcurrentJobs: 1, bandwidthBudgetBytesPerSec: 0 });
    const slow = await t.client.call('backup.restore', { hostId, domain: a.name, setId: a.setId, point: 0, disk: 'vda', destination: `${folder}/a.qcow2`, bandwidthBytesPerSec: MiB, wait: false });
    const queued = await t.client.call('backup.restore', { hostId, domain: b.name, setId: b.setId, point: 0, disk: 'vda', destination: `${folder}/b.qcow2`, wait: false });
    assert.equal(queued.job.phase, 'queued');
    assert.equal(queued.job.type, 'restore');
    await t.client.call('hosts.setLimits', { hostId, maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 0 });
    const ended = await waitForEnd(t, queued.job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    await assertSameData(b.chain, `${folder}/b.qcow2`);
    await t.client.call('job.abort', { hostId, domain: a.name, disk: 'vda' });
    assert.equal((await waitForEnd(t, slow.job.id)).phase, 'cancelled');
    assert.ok(!existsSync(`${folder}/a.qcow2`));
  });

  it('a restore left running by a stopped Strata is stopped by the next one, its image removed and the disk not switched', async (ctx) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-restore-data-'));
    ctx.after(() => rm(dataDir, { recursive: true, force: true }));
    const folder = await mkdtemp(join(tmpdir(), 'strata-backups-'));
    await makeTraversable(folder);
    ctx.after(() => rm(folder, { recursive: true, force: true }));
    const first = await startTestCore({ uri: TEST_URI, dataDir });
    ctx.after(() => first.close());
    await first.client.call('backup.setLocation', { hostId, path: folder });
    const { name, setId, dir } = await backedUp(ctx, first, 'rs-restart', [[[0, 24 * MiB]]]);
    const xmlBefore = await inactiveXml(name);
    const r = await first.client.call('backup.restore', { hostId, domain: name, setId, point: 0, disk: 'vda', into: 'domain', bandwidthBytesPerSec: MiB, wait: false });
    await waitForJob(first, (j) => j.id === r.job.id && j.cur > 0, { what: 'the restore to write' });
    // Closing Strata never stops a job: the daemon goes on writing the temporary file.
    await first.close();
    assert.ok((await readdir(dir)).some((f) => f.endsWith('.restoring')), 'the temporary file is there');

    const second = await startTestCore({ uri: TEST_URI, dataDir });
    ctx.after(() => second.close());
    const found = await waitForJob(second, (j) => j.domain === name && j.type === 'restore' && j.endedAt !== null, { timeoutMs: 60_000 });
    assert.equal(found.phase, 'failed');
    assert.match(found.outcome ?? '', /no disk was switched/);
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('restor')), [], 'no image and no temporary file');
    assert.ok(!existsSync(r.path));
    assert.equal(await inactiveXml(name), xmlBefore);
  });
});
