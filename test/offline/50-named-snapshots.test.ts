// libvirt's named snapshots on the layers they made, and qcow2's internal snapshots inside
// theirs: a `virsh snapshot-create-as --disk-only` snapshot of a shut-off domain is named on its
// layer; an offline commit that merges that layer away leaves it stranded, and Strata can tell.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type { Disk } from '../../src/shared/model.ts';
import { readInternalSnapshots, readSnapshotLayers, readSnapshots, strandedSnapshots, withSnapshots, type SnapshotReading, type SnapshotSource } from '../../src/main/core/chains/snapshots.ts';
import { readImageChain } from '../../src/main/core/offline/image-tool.ts';
import { OfflineJob } from '../../src/main/core/offline/offline-job.ts';
import { settleOfflineJob } from '../../src/main/core/offline/settle.ts';
import { runTool } from '../../src/main/core/lab/images.ts';
import { makeChain, sweepStaleDefinedDomains, useDefinedDomain, useLabDir, virsh, virshDefinition } from './offline-harness.ts';

before(() => sweepStaleDefinedDomains());

/** virsh snapshot-list + snapshot-dumpxml: the addon does not bind virDomainListAllSnapshots yet. */
const virshSnapshots: SnapshotSource = {
  async snapshotXmls(domain) {
    const names = (await virsh(['snapshot-list', '--name', domain])).split('\n').map((n) => n.trim()).filter(Boolean);
    return Promise.all(names.map((n) => virsh(['snapshot-dumpxml', domain, n])));
  },
};

/** A shut-off domain's disk as its images' headers give it (active layer first). */
async function diskOf(active: string): Promise<Disk> {
  const chain = await readImageChain(active);
  return {
    target: 'vda',
    device: 'disk',
    bus: 'virtio',
    readOnly: false,
    shareable: false,
    chain: chain.map((l) => ({ index: null, type: 'file', path: l.path, format: l.format })),
  };
}

test('a disk-only snapshot is named on its layer, internal snapshots on theirs', async (t) => {
  const dir = await useLabDir(t, 'offline-snapshots');
  const chain = await makeChain(dir, { writes: [[[0, 4 * 1024 * 1024]], [[0, 65536]]] });
  const [base, top] = chain.layers as [string, string];
  await runTool('qemu-img', ['snapshot', '-c', 'before-upgrade', base]);
  const name = await useDefinedDomain(t, dir, top, 'snapshots');
  const overlay = join(dir, 'snap1.qcow2');
  await virsh(['snapshot-create-as', name, 'snap1', 'before the kernel update', '--disk-only', '--diskspec', `vda,file=${overlay}`]);
  assert.match(await virsh(['snapshot-list', name]), /snap1/);

  const named = await readSnapshotLayers(virshSnapshots, name);
  assert.equal(named.length, 1);
  assert.deepEqual({ ...named[0], creationTime: 0 }, { name: 'snap1', creationTime: 0, description: 'before the kernel update', disk: 'vda', file: overlay, previous: top });
  assert.ok(Math.abs(named[0]!.creationTime - Date.now() / 1000) < 600, `creationTime ${named[0]!.creationTime}`);

  const disk = await diskOf(overlay);
  assert.deepEqual(disk.chain.map((l) => l.path), [overlay, top, base]);
  const internal = await readInternalSnapshots(disk.chain.map((l) => l.path));
  const [shown] = withSnapshots([disk], named, internal);
  assert.deepEqual(shown!.chain.map((l) => l.snapshot?.name ?? null), ['snap1', null, null]);
  assert.equal(shown!.chain[0]!.snapshot?.description, 'before the kernel update');
  assert.deepEqual(shown!.chain.map((l) => (l.internalSnapshots ?? []).map((s) => s.name)), [[], [], ['before-upgrade']]);
  // What domain.get adds, read twice: the second time from the cache of unchanged images.
  const added = async (reading: SnapshotReading): Promise<unknown> => {
    const snapshots = await readSnapshots(name, [disk], reading);
    return snapshots ? withSnapshots([disk], snapshots.named, snapshots.internal) : [disk];
  };
  assert.deepEqual(await added({ source: virshSnapshots, localImages: true }), [shown]);
  assert.deepEqual(await added({ source: virshSnapshots, localImages: true }), [shown]);
  assert.deepEqual(await added({ source: null, localImages: false }), [disk]);

  // An offline commit that merges the snapshot's layer away: libvirt's list then names an image
  // that is no longer in the chain, which is what the operation's preview has to deal with.
  const job = await OfflineJob.start({ domain: name, disk: 'vda', operation: { kind: 'commit', image: overlay, top: overlay, base: top }, bandwidthBytesPerSec: 0 });
  const outcome = await job.done;
  assert.equal(outcome.status, 'completed', outcome.message ?? '');
  await settleOfflineJob(job.intent, true, null, virshDefinition(dir));
  const after = await diskOf(top);
  assert.deepEqual(strandedSnapshots([after], await readSnapshotLayers(virshSnapshots, name)).map((s) => s.name), ['snap1']);
  assert.deepEqual(strandedSnapshots([disk], named), []);
});
