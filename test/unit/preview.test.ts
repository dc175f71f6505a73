import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Operation } from '../../src/shared/contract.ts';
import { StrataError } from '../../src/shared/errors.ts';
import type { Disk, Layer } from '../../src/shared/model.ts';
import { defaultSnapshotPath, previewOperation, requireConfirmations } from '../../src/main/core/chains/preview.ts';

const layer = (index: number, name: string): Layer => ({ index, type: 'file', path: `/lab/${name}.qcow2`, format: 'qcow2' });
// vda: top[4] -> mid2[3] -> mid1[2] -> base[1]
const disk: Disk = {
  target: 'vda',
  device: 'disk',
  bus: 'virtio',
  readOnly: false,
  shareable: false,
  chain: [layer(4, 'top'), layer(3, 'mid2'), layer(2, 'mid1'), layer(1, 'base')],
};
const names = (layers: Layer[]): string[] => layers.map((l) => l.path.replace(/^\/lab\/|\.qcow2$/g, ''));
const commit = (o: Partial<Extract<Operation, { kind: 'commit' }>>): Operation => ({ kind: 'commit', deleteLayers: false, ...o });
const copy = (o: Partial<Extract<Operation, { kind: 'copy' }>>): Operation => ({
  kind: 'copy',
  destination: '/new/copy.qcow2',
  format: 'qcow2',
  shallow: false,
  reuseExisting: false,
  synchronousWrites: false,
  afterReady: 'pivot',
  ...o,
});

function refused(fn: () => unknown, kind: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof StrataError && e.kind === kind && message.test(e.message));
}

describe('previewOperation: pull', () => {
  it('a full pull leaves the active layer alone in the chain', () => {
    const p = previewOperation(disk, { kind: 'pull' });
    assert.deepEqual(names(p.after), ['top']);
    assert.deepEqual(names(p.unused), ['mid2', 'mid1', 'base']);
    assert.deepEqual(p.needs, []);
    assert.deepEqual(p.deleted, []);
  });
  it('a pull to a base keeps the base and what is below it', () => {
    const p = previewOperation(disk, { kind: 'pull', base: 2 });
    assert.deepEqual(names(p.after), ['top', 'mid1', 'base']);
    assert.deepEqual(names(p.unused), ['mid2']);
  });
  it('refuses a base that is the active layer, its direct backing, or not in the chain', () => {
    refused(() => previewOperation(disk, { kind: 'pull', base: 4 }), 'invalid-request', /cannot be the active layer/);
    refused(() => previewOperation(disk, { kind: 'pull', base: 3 }), 'conflict', /nothing to pull/);
    refused(() => previewOperation(disk, { kind: 'pull', base: 9 }), 'invalid-request', /vda\[9\] is not a layer/);
  });
  it('refuses a single-layer disk', () => {
    refused(() => previewOperation({ ...disk, chain: [layer(1, 'only')] }, { kind: 'pull' }), 'conflict', /no backing image/);
  });
});

describe('previewOperation: commit', () => {
  it('an inactive commit of a middle layer drops it and needs confirmation', () => {
    const p = previewOperation(disk, commit({ top: 3, base: 2 }));
    assert.deepEqual(names(p.after), ['top', 'mid1', 'base']);
    assert.deepEqual(names(p.unused), ['mid2']);
    assert.deepEqual(p.needs, ['drop-layers']);
    assert.ok(p.warnings.some((w) => /no longer valid images/.test(w)));
  });
  it('an active commit with pivot makes the base the active layer', () => {
    const p = previewOperation(disk, commit({ base: 2, afterReady: 'pivot' }));
    assert.deepEqual(names(p.after), ['mid1', 'base']);
    assert.deepEqual(names(p.unused), ['top', 'mid2']);
  });
  it('an active commit that keeps the chain drops nothing and needs nothing', () => {
    const p = previewOperation(disk, commit({ afterReady: 'keep' }));
    assert.deepEqual(names(p.after), names(disk.chain));
    assert.deepEqual(p.needs, []);
  });
  it('defaults: top is the active layer and base the bottom of the chain', () => {
    const p = previewOperation(disk, commit({}));
    assert.deepEqual(names(p.after), ['base']);
    assert.ok(p.warnings.some((w) => /waits at ready/.test(w)));
  });
  it('deleting layers needs its own confirmation and lists the files', () => {
    const p = previewOperation(disk, commit({ top: 3, base: 1, deleteLayers: true }));
    assert.deepEqual(names(p.deleted), ['mid2', 'mid1']);
    assert.deepEqual(p.needs, ['drop-layers', 'delete-files']);
  });
  it('refuses a base above the top, afterReady on an inactive commit, and delete with keep', () => {
    refused(() => previewOperation(disk, commit({ top: 2, base: 3 })), 'invalid-request', /must lie below top/);
    refused(() => previewOperation(disk, commit({ top: 3, afterReady: 'pivot' })), 'invalid-request', /only to an active commit/);
    refused(() => previewOperation(disk, commit({ afterReady: 'keep', deleteLayers: true })), 'invalid-request', /cannot go with afterReady 'keep'/);
  });
});

describe('previewOperation: copy and snapshot', () => {
  it('a full copy replaces the whole chain; a shallow one keeps the backing layers', () => {
    const full = previewOperation(disk, copy({}));
    assert.deepEqual(full.after.map((l) => l.path), ['/new/copy.qcow2']);
    assert.equal(full.unused.length, 4);
    assert.deepEqual(full.created, { path: '/new/copy.qcow2', format: 'qcow2' });
    const shallow = previewOperation(disk, copy({ shallow: true }));
    assert.deepEqual(shallow.after.map((l) => l.path), ['/new/copy.qcow2', '/lab/mid2.qcow2', '/lab/mid1.qcow2', '/lab/base.qcow2']);
    assert.deepEqual(names(shallow.unused), ['top']);
  });
  it('writing into an existing file needs confirmation', () => {
    const p = previewOperation(disk, copy({ reuseExisting: true }));
    assert.deepEqual(p.needs, ['reuse-existing-file']);
    assert.equal(p.created, null);
  });
  it('refuses a destination that is a layer of the disk', () => {
    refused(() => previewOperation(disk, copy({ destination: '/lab/base.qcow2' })), 'invalid-request', /is a layer of vda itself/);
  });
  it('a snapshot puts a new layer on top, beside the active one by default', () => {
    const now = new Date('2026-11-25T19:30:05Z');
    const p = previewOperation(disk, { kind: 'snapshot' }, now);
    assert.equal(p.after[0]?.path, '/lab/top.20261125-193005.qcow2');
    assert.equal(defaultSnapshotPath('/x/disk.img', now), '/x/disk.20261125-193005.qcow2');
    assert.equal(p.after.length, 5);
  });
});

describe('requireConfirmations', () => {
  it('names what would be lost and how to confirm', () => {
    const p = previewOperation(disk, commit({ top: 3, base: 1, deleteLayers: true }));
    refused(() => requireConfirmations(p, ['drop-layers']), 'conflict', /files \/lab\/mid2\.qcow2, \/lab\/mid1\.qcow2 are deleted/);
    assert.doesNotThrow(() => requireConfirmations(p, ['drop-layers', 'delete-files']));
  });
});
