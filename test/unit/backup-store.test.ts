// The backup set rules that need no libvirt: which sets retention removes (never the newest good
// one, never one being written), the chain a point restores from, and the domain folder's name.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackupPoint, BackupSet } from '../../src/shared/backup.ts';
import { chainOf, domainFolderName, setsToRemove } from '../../src/main/core/backup/store.ts';

const day = 86_400_000;

function point(index: number, status: BackupPoint['status'], backingFile: string | null = null): BackupPoint {
  const kind = index === 0 ? 'full' : 'incremental';
  return { index, kind, checkpoint: `c${index}`, startedAt: 0, endedAt: 0, status, reason: null, dataBytes: null, images: [{ disk: 'vda', file: `vda.${index}.${kind}.qcow2`, format: 'qcow2', backingFile, bytes: 1 }] };
}

function set(id: string, createdAt: number, good: boolean, points: BackupPoint[] = [point(0, good ? 'complete' : 'cancelled')]): BackupSet {
  return { id, domain: 'd', domainUuid: null, hostUri: 'qemu:///system', folder: `/b/d/${id}`, strataVersion: '0', createdAt, disks: [{ target: 'vda', virtualBytes: 1, sourcePath: null }], points, good, problem: null };
}

describe('backup sets', () => {
  it('retention keeps the newest good sets, removes older ones and failed sets before the newest good one', () => {
    const sets = [set('a', 1 * day, true), set('b', 2 * day, false), set('c', 3 * day, true), set('d', 4 * day, true), set('e', 5 * day, false)];
    assert.deepEqual(setsToRemove(sets, { keepSets: 2, keepDays: null }, 6 * day).map((s) => s.id).sort(), ['a', 'b']);
    // A failed set newer than the newest good one stays: it may be retried, and it explains itself.
    assert.ok(!setsToRemove(sets, { keepSets: 1, keepDays: null }, 6 * day).some((s) => s.id === 'e'));
    assert.deepEqual(setsToRemove(sets, { keepSets: null, keepDays: 3 }, 6 * day).map((s) => s.id).sort(), ['a', 'b']);
  });

  it('never removes the only good set, however old, nor a set being written', () => {
    assert.deepEqual(setsToRemove([set('a', 0, true)], { keepSets: 1, keepDays: 1 }, 1000 * day), []);
    const writing = set('w', 1 * day, true, [point(0, 'complete'), point(1, 'running', 'vda.0.full.qcow2')]);
    assert.deepEqual(setsToRemove([writing, set('n', 2 * day, true)], { keepSets: 1, keepDays: null }, 3 * day), []);
    assert.deepEqual(setsToRemove([set('x', 1 * day, false)], { keepSets: 1, keepDays: null }, 3 * day), [], 'no good set: nothing is removed');
  });

  it('a point restores from its own image down its backing links to the full backup, skipping failed points', () => {
    const points = [point(0, 'complete'), point(1, 'complete', 'vda.0.full.qcow2'), point(2, 'failed', 'vda.1.incremental.qcow2'), point(3, 'complete', 'vda.1.incremental.qcow2')];
    assert.deepEqual(chainOf({ points }, 3, 'vda'), ['vda.0.full.qcow2', 'vda.1.incremental.qcow2', 'vda.3.incremental.qcow2']);
    assert.deepEqual(chainOf({ points }, 0, 'vda'), ['vda.0.full.qcow2']);
    assert.deepEqual(chainOf({ points: [point(1, 'complete', 'gone.qcow2')] }, 1, 'vda'), [], 'a broken link is no chain');
    assert.deepEqual(chainOf({ points }, 1, 'vdb'), []);
  });

  it("a domain's folder name is never a path, '.', '..' or hidden", () => {
    assert.equal(domainFolderName('web-01_a'), 'web-01_a');
    assert.equal(domainFolderName('..'), '%2E%2E');
    assert.equal(domainFolderName('.hidden'), '%2Ehidden');
    assert.equal(domainFolderName('a b/ü'), 'a%20b%2F%C3%BC');
  });
});
