// The host's model of its domains: what it serves without reading, and what makes it read again.
// libvirt is replaced by counters here because the cases turn on the order of a reading and an
// event (a change seen while a reading is under way), which a real daemon cannot be made to
// produce on demand; test/core/55-domain-model covers the same rules against libvirtd.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChainIndex } from '../../src/main/core/chains/chain-index.ts';
import { DomainModel, type KnownDomain } from '../../src/main/core/chains/domain-model.ts';
import type { DomainState } from '../../src/shared/model.ts';
import type { RawDomain } from '../../src/main/libvirt/types.ts';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function known(name: string, top: string, state: DomainState = 'running'): KnownDomain {
  const disk = { target: 'vda', device: 'disk' as const, bus: 'virtio', readOnly: false, shareable: false, chain: [{ index: 1, type: 'file' as const, path: top, format: 'qcow2' }] };
  return { parsed: { name, uuid: `uuid-${name}`, disks: [disk], mirrors: new Map() }, state };
}

function fixture(options: { trustMs?: number } = {}) {
  let now = 0;
  const tops = new Map<string, string>([['a', '/v/a-1']]);
  const reads: { name: string; state: DomainState | null }[] = [];
  let lists = 0;
  let gate: Promise<void> | null = null;
  const model = new DomainModel({
    list: async (): Promise<RawDomain[]> => {
      lists++;
      return [...tops.keys()].map((name) => ({ name, uuid: `uuid-${name}`, state: 'running', active: true }));
    },
    read: async (name, state) => {
      reads.push({ name, state });
      const top = tops.get(name) ?? '';
      if (gate) await gate;
      return known(name, top, state ?? 'running');
    },
    chains: new ChainIndex(),
    trustMs: options.trustMs ?? 500,
    now: () => now,
  });
  return {
    model,
    reads,
    tops,
    lists: () => lists,
    tick: (ms: number) => (now += ms),
    now: () => now,
    hold: () => {
      const d = deferred<void>();
      gate = d.promise;
      return () => {
        gate = null;
        d.resolve();
      };
    },
  };
}

const top = (k: KnownDomain): string | undefined => k.parsed.disks[0]?.chain[0]?.path;

describe('DomainModel', () => {
  it('serves a reading within the trust window, and reads again after it or after an event', async () => {
    const f = fixture();
    await f.model.known('a');
    f.tick(400);
    await f.model.known('a');
    assert.equal(f.reads.length, 1, 'served from the model within the window');
    f.model.invalidate('a');
    f.tops.set('a', '/v/a-2');
    assert.equal(top(await f.model.known('a')), '/v/a-2', 'an event makes the next reader read');
    f.tick(501);
    await f.model.known('a');
    assert.equal(f.reads.length, 3, 'the window passed: read again');
  });

  it('hands a reading that began before a change to its caller but does not keep it', async () => {
    const f = fixture();
    const release = f.hold();
    const early = f.model.known('a');
    f.model.invalidate('a');
    f.tops.set('a', '/v/a-2');
    release();
    assert.equal(top(await early), '/v/a-1');
    assert.equal(top(await f.model.known('a')), '/v/a-2', 'the next reader reads the new chain');
    assert.equal(f.reads.length, 2);
  });

  it('joins readers of the same domain while one reading is under way', async () => {
    const f = fixture();
    const release = f.hold();
    const both = Promise.all([f.model.known('a'), f.model.known('a')]);
    release();
    await both;
    assert.equal(f.reads.length, 1);
  });

  it('takes the state from a listing no change has outdated, and asks for it otherwise', async () => {
    const f = fixture();
    await f.model.list();
    await f.model.read('a');
    assert.deepEqual(f.reads.at(-1), { name: 'a', state: 'running' });
    f.model.invalidate('a');
    await f.model.read('a');
    assert.deepEqual(f.reads.at(-1), { name: 'a', state: null }, 'a lifecycle event dropped the listing: the reader asks');
  });

  it('while sweeping, keeps a reading the bulk readings find unchanged, and forgets one whose disks changed without an event', async () => {
    const f = fixture();
    const print = (p: string) => [{ name: 'a', print: p }];
    f.model.sweep(print('vda=/v/a-1'), f.now());
    f.model.sweeping(true);
    f.tick(1);
    await f.model.known('a');
    f.tick(2_000);
    assert.deepEqual(f.model.sweep(print('vda=/v/a-1'), f.now()), []);
    f.tick(2_000);
    await f.model.known('a');
    assert.equal(f.reads.length, 1, 'confirmed by the sweep: still served 2 s after its reading');

    f.tops.set('a', '/v/a-2');
    assert.deepEqual(f.model.sweep(print('vda=/v/a-2'), f.now()), ['a'], 'an external snapshot: named as changed');
    assert.equal(top(await f.model.known('a')), '/v/a-2');
    assert.equal(f.reads.length, 2);
  });

  it('does not let a sweep confirm a reading older than the bulk reading it is compared with', async () => {
    const f = fixture();
    f.model.sweeping(true);
    await f.model.known('a');
    f.tick(10);
    // The disks changed between the reading and the first bulk reading: no sweep can see it.
    f.tops.set('a', '/v/a-2');
    f.model.sweep([{ name: 'a', print: 'vda=/v/a-2' }], f.now());
    f.tick(10);
    f.model.sweep([{ name: 'a', print: 'vda=/v/a-2' }], f.now());
    f.tick(600);
    assert.equal(top(await f.model.known('a')), '/v/a-2', 'the old reading expired instead of being confirmed');
  });

  it('makes readers wait for the reading after a connection instead of reading twice', async () => {
    const f = fixture();
    const release = f.hold();
    const reconcile = (async () => {
      await f.model.list();
      await f.model.read('a');
    })();
    f.model.settling(reconcile);
    const got = f.model.known('a');
    const listed = f.model.listing();
    release();
    await Promise.all([got, listed, reconcile]);
    assert.equal(f.reads.length, 1);
    assert.equal(f.lists(), 1);
  });

  it('forgets everything on a new connection, and a failed bulk reading confirms nothing', async () => {
    const f = fixture();
    f.model.sweeping(true);
    f.model.sweep([{ name: 'a', print: 'x' }], f.now());
    await f.model.known('a');
    f.model.clear();
    await f.model.known('a');
    assert.equal(f.reads.length, 2);
    f.model.sweeping(true);
    f.model.sweep(null, f.now());
    f.tick(600);
    await f.model.known('a');
    assert.equal(f.reads.length, 3);
  });
});
