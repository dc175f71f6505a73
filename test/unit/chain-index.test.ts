// The index of which domains use which image files: the reverse look-up a preview makes must
// forget a domain's old layers when it is read again or gone, and name each other domain once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChainIndex } from '../../src/main/core/chains/chain-index.ts';
import type { Disk, Layer } from '../../src/shared/model.ts';

const layer = (path: string, index: number): Layer => ({ index, type: 'file', path, format: 'qcow2' });
const disk = (...paths: string[]): Disk => ({
  target: 'vda',
  device: 'disk',
  bus: 'virtio',
  readOnly: false,
  shareable: false,
  chain: paths.map((p, i) => layer(p, i + 1)),
});

describe('ChainIndex', () => {
  it('names the other domains on a layer an operation writes into or deletes, and forgets old chains', () => {
    const index = new ChainIndex();
    const mine = disk('/v/a-top', '/v/mid', '/v/base');
    index.set('a', [mine]);
    index.set('b', [disk('/v/b-top', '/v/base')]);
    index.set('c', [disk('/v/c-top', '/v/mid', '/v/base')]);
    const commit = { kind: 'commit', deleteLayers: true } as const;
    assert.deepEqual(index.sharedWith('a', mine, commit, { after: [], deleted: [layer('/v/mid', 2)] }), [
      { domain: 'b', paths: ['/v/base'], effect: 'written' },
      { domain: 'c', paths: ['/v/mid'], effect: 'deleted' },
      { domain: 'c', paths: ['/v/base'], effect: 'written' },
    ]);

    // c was pulled (read again with one layer), and b is gone.
    index.set('c', [disk('/v/c-top')]);
    index.retain(new Set(['a', 'c']));
    assert.deepEqual(index.sharedWith('a', mine, commit, { after: [], deleted: [layer('/v/mid', 2)] }), []);
  });
});
