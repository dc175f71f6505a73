// What happens to libvirt's named snapshots when layers leave a chain, decided from their records
// alone (the real records and chains are exercised in test/offline/60-named-revert-grow), and the
// contract's rules for a snapshot's name, a revert and a new size.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { namedSnapshotXml, parseSnapshotXml, snapshotFates, type SnapshotLayer } from '../../src/main/core/chains/snapshots.ts';
import { requestSchemas } from '../../src/shared/contract.ts';

const snap = (name: string, disk: string, file: string, previous: string | null): SnapshotLayer => ({ name, creationTime: 1, description: '', disk, file, previous });

test('a record is deleted when the layer it made or the image it names as before leaves the chain, kept otherwise', () => {
  const chain = ['/i/top.qcow2', '/i/mid.qcow2', '/i/base.qcow2'];
  const named = [snap('s-mid', 'vda', '/i/mid.qcow2', '/i/base.qcow2'), snap('s-top', 'vda', '/i/top.qcow2', '/i/mid.qcow2'), snap('s-other', 'vdb', '/j/x.qcow2', null)];
  // A commit of mid into base: mid leaves.
  const fates = snapshotFates('vda', chain, named, new Set(['/i/mid.qcow2']));
  assert.deepEqual(
    fates.map((f) => [f.name, f.fate]),
    [
      ['s-mid', 'metadata-deleted'],
      ['s-top', 'metadata-deleted'],
    ],
  );
  assert.match(fates[0]!.reason, /The layer it made, \/i\/mid\.qcow2, leaves the chain/);
  assert.match(fates[1]!.reason, /names \/i\/mid\.qcow2 as the disk before it/);
  // Nothing removed: every record of the disk is kept; another disk's records are not listed.
  assert.deepEqual(
    snapshotFates('vda', chain, named, new Set()).map((f) => [f.name, f.fate]),
    [
      ['s-mid', 'kept'],
      ['s-top', 'kept'],
    ],
  );
});

test('a record that also covers another disk says so', () => {
  const named = [snap('both', 'vda', '/i/a.qcow2', '/i/b.qcow2'), snap('both', 'vdb', '/j/a.qcow2', '/j/b.qcow2')];
  const [fate] = snapshotFates('vda', ['/i/a.qcow2', '/i/b.qcow2'], named, new Set(['/i/a.qcow2']));
  assert.match(fate!.reason, /also covers vdb/);
});

test("a named snapshot's XML is read back as the layer it makes, names and descriptions escaped", () => {
  const xml = namedSnapshotXml('vda', "/i/new <'&'>.qcow2", ['vdb'], 'before <upgrade>', 'kernel & "modules"');
  const wrapped = xml.replace('</domainsnapshot>', "<creationTime>5</creationTime><domain><devices><disk><source file='/i/old.qcow2'/><target dev='vda'/></disk></devices></domain></domainsnapshot>");
  const [layer, ...rest] = parseSnapshotXml(wrapped.replace("<disk name='vdb' snapshot='no'/>", ''));
  assert.deepEqual(rest, []);
  assert.deepEqual(layer, { name: 'before <upgrade>', creationTime: 5, description: 'kernel & "modules"', disk: 'vda', file: "/i/new <'&'>.qcow2", previous: '/i/old.qcow2' });
  assert.doesNotMatch(namedSnapshotXml('vda', '/i/n.qcow2', [], 'n', undefined), /<description>/);
});

test('the contract: a description needs a name, a name has no slash or outer spaces, a size is whole sectors', () => {
  const ref = { hostId: 'h', domain: 'd', disk: 'vda' };
  const snapshot = requestSchemas['disk.snapshot'];
  assert.equal(snapshot.safeParse({ ...ref, name: 'ok', description: 'why' }).success, true);
  assert.equal(snapshot.safeParse({ ...ref, description: 'why' }).success, false);
  assert.equal(snapshot.safeParse({ ...ref, name: 'a/b' }).success, false);
  assert.equal(snapshot.safeParse({ ...ref, name: ' a' }).success, false);
  assert.equal(snapshot.safeParse(ref).success, true);
  const grow = requestSchemas['disk.grow'];
  assert.equal(grow.safeParse({ ...ref, bytes: 1024 ** 3 }).success, true);
  assert.equal(grow.safeParse({ ...ref, bytes: 1000 }).success, false);
  assert.equal(grow.safeParse({ ...ref, bytes: 0 }).success, false);
  const revert = requestSchemas['disk.revert'];
  assert.deepEqual(revert.parse({ ...ref, layer: '/i/a.qcow2' }), { ...ref, layer: '/i/a.qcow2', deleteFiles: false, confirm: [] });
  assert.equal(revert.safeParse({ ...ref, layer: 'a.qcow2' }).success, false);
  assert.equal(revert.safeParse({ ...ref, layer: '/i/a.qcow2', confirm: ['low-space'] }).success, false);
});
