// libvirt's named snapshots through the contract, a revert to an older layer and growing a disk,
// on real libvirtd + QEMU with persistent (defined) domains: a `virsh snapshot-create-as
// --disk-only` snapshot is named on its layer by domain.get; a commit that merges it away leaves
// `virsh snapshot-list` naming only what is in the chain; Strata's own named snapshot is in that
// list; a revert of a shut-off domain boots the guest on the older layer with its data as it was;
// a disk grows running (libvirt) and shut off (qemu-img), and a shrink is refused.
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { runTool } from '../../src/main/core/lab/images.ts';
import { readImageChain } from '../../src/main/core/offline/image-tool.ts';
import { engineSuite, rejection, waitForEnd } from '../core/engine-harness.ts';
import { diskChain, waitFor } from '../lab/harness.ts';
import { MiB, sweepStaleDefinedDomains, useDefinedDomain, useLabDir, virsh } from './offline-harness.ts';

before(() => sweepStaleDefinedDomains());

const snapshotNames = async (domain: string): Promise<string[]> =>
  (await virsh(['snapshot-list', '--name', domain]))
    .split('\n')
    .map((n) => n.trim())
    .filter(Boolean);

/** A qcow2 image, on `backing` when given, with `pattern` written at 1 MiB (64 KiB). */
async function image(path: string, backing: string | null, pattern: number | null): Promise<string> {
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', ...(backing ? ['-b', backing, '-F', 'qcow2'] : []), path, String(64 * MiB)]);
  if (pattern !== null) await runTool('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x${pattern.toString(16)} 1M 64k`, path]);
  return path;
}

/** qemu-io exits non-zero when the bytes at 1 MiB are not `pattern` (read through the chain). */
async function readsPattern(path: string, pattern: number): Promise<boolean> {
  try {
    await runTool('qemu-io', ['-r', '-U', '-f', 'qcow2', '-c', `read -P 0x${pattern.toString(16)} 1M 64k`, path]);
    return true;
  } catch {
    return false;
  }
}

describe('named snapshots, revert and grow through the contract', { timeout: 240_000 }, () => {
  const t = engineSuite();

  it('a virsh disk-only snapshot is named on its layer; a commit that merges it away leaves snapshot-list consistent', async (ctx) => {
    const dir = await useLabDir(ctx, 'named-commit');
    const base = await image(join(dir, 'base.qcow2'), null, 0xa0);
    const name = await useDefinedDomain(ctx, dir, base, 'named');
    const overlay = join(dir, 'snap1.qcow2');
    await virsh(['snapshot-create-as', name, 'snap1', 'before the kernel update', '--disk-only', '--diskspec', `vda,file=${overlay}`]);
    await virsh(['start', name]);
    const ref = { hostId, domain: name, disk: 'vda' };

    const detail = await t.client.call('domain.get', { hostId, domain: name });
    const chain = detail.disks[0]!.chain;
    assert.deepEqual(chain.map((l) => l.path), [overlay, base]);
    assert.equal(chain[0]!.snapshot?.name, 'snap1');
    assert.equal(chain[0]!.snapshot?.description, 'before the kernel update');
    assert.ok(Math.abs(chain[0]!.snapshot!.creationTime - Date.now() / 1000) < 600);
    assert.equal(chain[1]!.snapshot, null);

    // An active commit merges snap1's layer into the base: the preview says its record goes.
    const operation = { kind: 'commit', afterReady: 'pivot' } as const;
    const preview = await t.client.call('operation.preview', { ...ref, operation });
    assert.deepEqual(preview.namedSnapshots?.map((s) => [s.name, s.fate]), [['snap1', 'metadata-deleted']]);
    assert.match(preview.namedSnapshots![0]!.reason, /metadata only/);
    const job = await t.client.call('job.start', { ...ref, operation, confirm: ['drop-layers'] });
    const ended = await waitForEnd(t, job.id, { timeoutMs: 60_000 });
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(diskChain(await virsh(['dumpxml', name]), 'vda'), [base]);
    await waitFor(async () => (await snapshotNames(name)).length === 0, { timeoutMs: 20_000, what: "snap1's metadata to be deleted" });
    // The images are untouched: the overlay's file is still there.
    await access(overlay);
    await virsh(['destroy', name]);
  });

  it('an offline commit on a shut-off domain that merges a named layer away deletes its record too', async (ctx) => {
    const dir = await useLabDir(ctx, 'named-offline');
    const base = await image(join(dir, 'base.qcow2'), null, 0xa0);
    const name = await useDefinedDomain(ctx, dir, base, 'named-offline');
    const overlay = join(dir, 'snap1.qcow2');
    await virsh(['snapshot-create-as', name, 'snap1', '--disk-only', '--diskspec', `vda,file=${overlay}`]);
    await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x66 1M 64k', overlay]);
    const ref = { hostId, domain: name, disk: 'vda' };
    const detail = await t.client.call('domain.get', { hostId, domain: name });
    assert.equal(detail.state, 'shutoff');
    assert.deepEqual(detail.disks[0]!.chain.map((l) => [l.path, l.snapshot?.name ?? null]), [[overlay, 'snap1'], [base, null]]);

    const operation = { kind: 'commit' } as const;
    const preview = await t.client.call('operation.preview', { ...ref, operation });
    assert.deepEqual(preview.namedSnapshots?.map((s) => [s.name, s.fate]), [['snap1', 'metadata-deleted']]);
    const job = await t.client.call('job.start', { ...ref, operation, confirm: ['drop-layers'] });
    const ended = await waitForEnd(t, job.id, { timeoutMs: 60_000 });
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    await waitFor(async () => (await snapshotNames(name)).length === 0, { timeoutMs: 20_000, what: "snap1's metadata to be deleted" });
    assert.ok(await readsPattern(base, 0x66), "the overlay's data is in the base");
  });

  it("Strata's named snapshot is in virsh snapshot-list with its description, and on its layer", async (ctx) => {
    const dir = await useLabDir(ctx, 'named-strata');
    const base = await image(join(dir, 'base.qcow2'), null, 0xa0);
    const name = await useDefinedDomain(ctx, dir, base, 'named-own');
    await virsh(['start', name]);
    const ref = { hostId, domain: name, disk: 'vda' };
    const destination = join(dir, 'before-upgrade.qcow2');
    const disk = await t.client.call('disk.snapshot', { ...ref, destination, name: 'before-upgrade', description: 'kernel 6.1 → 6.6' });
    assert.equal(disk.chain[0]!.path, destination);
    assert.equal(disk.chain[0]!.snapshot?.name, 'before-upgrade');
    assert.deepEqual(await snapshotNames(name), ['before-upgrade']);
    assert.match(await virsh(['snapshot-dumpxml', name, 'before-upgrade']), /<description>kernel 6\.1 → 6\.6<\/description>/);

    // Without a name it stays a plain layer that libvirt does not list.
    const plain = await t.client.call('disk.snapshot', { ...ref, destination: join(dir, 'plain.qcow2') });
    assert.equal(plain.chain[0]!.snapshot, null);
    assert.deepEqual(await snapshotNames(name), ['before-upgrade']);
    const refused = await rejection(t.client.call('disk.snapshot', { ...ref, description: 'no name' } as never));
    assert.equal(refused.kind, 'invalid-request');
    await virsh(['destroy', name]);
  });

  it('revert on a shut-off domain: previewed, confirmed, and the guest boots on the older layer with its data', async (ctx) => {
    const dir = await useLabDir(ctx, 'revert');
    const base = await image(join(dir, 'base.qcow2'), null, 0xa0);
    const older = await image(join(dir, 'older.qcow2'), base, 0x5a);
    const name = await useDefinedDomain(ctx, dir, older, 'revert');
    const newer = join(dir, 'newer.qcow2');
    await virsh(['snapshot-create-as', name, 'risky-change', '--disk-only', '--diskspec', `vda,file=${newer}`]);
    await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x77 1M 64k', newer]);
    assert.ok(await readsPattern(newer, 0x77));
    const ref = { hostId, domain: name, disk: 'vda' };

    const preview = await t.client.call('revert.preview', { ...ref, layer: older });
    assert.deepEqual(preview.discarded.map((l) => l.path), [newer]);
    assert.deepEqual(preview.after.map((l) => l.path), [older, base]);
    assert.deepEqual(preview.needs, ['drop-layers']);
    assert.ok(preview.bytesDiscarded !== null && preview.bytesDiscarded >= 64 * 1024, `bytes discarded: ${preview.bytesDiscarded}`);
    assert.deepEqual(preview.namedSnapshots.map((s) => [s.name, s.fate]), [['risky-change', 'metadata-deleted']]);

    const unconfirmed = await rejection(t.client.call('disk.revert', { ...ref, layer: older }));
    assert.equal(unconfirmed.kind, 'conflict');
    assert.ok(unconfirmed.message.includes(newer), unconfirmed.message);
    assert.match(await virsh(['dumpxml', '--inactive', name]), new RegExp(`<source file='${newer}'`), 'nothing changed unconfirmed');

    const inactiveBefore = await virsh(['dumpxml', '--inactive', name]);
    const result = await t.client.call('disk.revert', { ...ref, layer: older, confirm: ['drop-layers'] });
    assert.deepEqual(result.kept, [newer]);
    assert.deepEqual(result.deleted, []);
    await access(newer);
    const inactiveAfter = await virsh(['dumpxml', '--inactive', name]);
    assert.equal(inactiveAfter, inactiveBefore.replace(`<source file='${newer}'/>`, `<source file='${older}'/>`), 'only the source changed');
    assert.deepEqual(await snapshotNames(name), []);
    assert.deepEqual(
      (await readImageChain(older)).map((l) => l.path),
      [older, base],
    );

    // Booted: QEMU runs on the older layer, and the data there is the data written before the snapshot.
    await virsh(['start', name]);
    const running = await t.client.call('domain.get', { hostId, domain: name });
    assert.equal(running.state, 'running');
    assert.deepEqual(diskChain(await virsh(['dumpxml', name]), 'vda'), [older, base]);
    const refusedRunning = await rejection(t.client.call('revert.preview', { ...ref, layer: base }));
    assert.equal(refusedRunning.kind, 'conflict');
    assert.match(refusedRunning.message, /is running: Strata reverts a disk only while its domain is shut off/);
    await virsh(['destroy', name]);
    assert.ok(await readsPattern(older, 0x5a), 'the older layer still reads what was written before the snapshot');
  });

  it('a revert names the other domains that use the layer it makes writable, and needs shared-layers confirmed', async (ctx) => {
    const dir = await useLabDir(ctx, 'revert-shared');
    const base = await image(join(dir, 'base.qcow2'), null, 0xa0);
    const older = await image(join(dir, 'older.qcow2'), base, 0x5a);
    const newer = await image(join(dir, 'newer.qcow2'), older, 0x77);
    const clone = await image(join(dir, 'clone.qcow2'), older, 0x33);
    const name = await useDefinedDomain(ctx, dir, newer, 'revert-a');
    const other = await useDefinedDomain(ctx, dir, clone, 'revert-b');
    // Strata knows the other domain's chain once it has read it (as the host's model does).
    await t.client.call('domain.get', { hostId, domain: other });
    const ref = { hostId, domain: name, disk: 'vda' };
    const preview = await t.client.call('revert.preview', { ...ref, layer: older });
    assert.deepEqual(preview.sharedWith, [{ domain: other, paths: [older], effect: 'written' }]);
    assert.deepEqual(preview.needs, ['drop-layers', 'shared-layers']);
    const refused = await rejection(t.client.call('disk.revert', { ...ref, layer: older, confirm: ['drop-layers'] }));
    assert.match(refused.message, new RegExp(`other domains use these layers \\(${other}: ${older}\\)`));
    const deleting = await t.client.call('revert.preview', { ...ref, layer: older, deleteFiles: true });
    assert.deepEqual(deleting.needs, ['drop-layers', 'delete-files', 'shared-layers']);
    const done = await t.client.call('disk.revert', { ...ref, layer: older, deleteFiles: true, confirm: ['drop-layers', 'delete-files', 'shared-layers'] });
    assert.deepEqual(done.deleted, [newer]);
    await assert.rejects(access(newer));
    assert.deepEqual(done.disk.chain.map((l) => l.path), [older, base]);
  });

  it('grow: shut off through qemu-img, running through libvirt; a smaller size is refused with the current size', async (ctx) => {
    const dir = await useLabDir(ctx, 'grow');
    const base = await image(join(dir, 'base.qcow2'), null, 0xa0);
    const active = await image(join(dir, 'active.qcow2'), base, 0x5a);
    const name = await useDefinedDomain(ctx, dir, active, 'grow');
    const ref = { hostId, domain: name, disk: 'vda' };

    const shrink = await rejection(t.client.call('disk.grow', { ...ref, bytes: 32 * MiB }));
    assert.equal(shrink.kind, 'conflict');
    assert.match(shrink.message, new RegExp(`is ${64 * MiB} bytes \\(64 MiB\\) now`));
    const off = await t.client.call('disk.grow', { ...ref, bytes: 128 * MiB });
    assert.deepEqual([off.previousBytes, off.bytes, off.through], [64 * MiB, 128 * MiB, 'qemu-img resize']);
    assert.match(off.nextStep, /partition and file system/);
    const [top] = await readImageChain(active, { single: true });
    assert.equal(top!.virtualSize, 128 * MiB);

    await virsh(['start', name]);
    const smaller = await rejection(t.client.call('disk.grow', { ...ref, bytes: 96 * MiB }));
    assert.match(smaller.message, new RegExp(`is ${128 * MiB} bytes \\(128 MiB\\) now`));
    const on = await t.client.call('disk.grow', { ...ref, bytes: 192 * MiB });
    assert.deepEqual([on.previousBytes, on.bytes, on.through], [128 * MiB, 192 * MiB, 'virDomainBlockResize']);
    assert.match(await virsh(['domblkinfo', name, 'vda']), new RegExp(`Capacity:\\s+${192 * MiB}`));
    await virsh(['destroy', name]);
    assert.ok(await readsPattern(active, 0x5a), 'the data is where it was');
  });
});
