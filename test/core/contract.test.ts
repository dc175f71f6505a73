// The contract end to end over the in-memory transport, against libvirt's own test driver
// (test:///default): listing, reading chains, and every kind of bad request.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { StrataClient } from '../../src/shared/bridge.ts';
import { defaultHostId } from '../../src/main/core/api/core.ts';
import { startTestCore, type TestCore } from './core-harness.ts';
import { rejection } from './engine-harness.ts';

describe('contract over test:///default', () => {
  let t: TestCore;
  let client: StrataClient;
  const hostId = defaultHostId;
  const raw = (method: string, params: unknown) => t.core.dispatcher.handle(method, params);

  before(async () => {
    t = await startTestCore({ uri: 'test:///default' });
    client = t.client;
  });
  after(() => t.close());

  it('lists the connected host', async () => {
    const hosts = await client.call('hosts.list', {});
    assert.deepEqual(hosts, [
      {
        id: hostId,
        uri: 'test:///default',
        label: 'test:///default',
        readOnly: false,
        saved: false,
        state: 'connected',
        reason: null,
        hint: null,
        retryAt: null,
        access: null,
        limits: { maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 0 },
        spaceGuard: { minFreeBytes: 256 * 1024 * 1024, minFreePercent: 5, action: 'throttle' },
      },
    ]);
  });

  it('lists domains and reads one with its disks', async () => {
    const domains = await client.call('domains.list', { hostId });
    assert.deepEqual(
      domains.map((d) => [d.name, d.state]),
      [['test', 'running']],
    );
    const detail = await client.call('domain.get', { hostId, domain: 'test' });
    assert.equal(detail.name, 'test');
    assert.equal(detail.state, 'running');
    assert.ok(Array.isArray(detail.disks));
  });

  it('refuses a negative, fractional or non-numeric bandwidth before libvirt sees it', async () => {
    for (const bandwidthBytesPerSec of [-1, 1.5, '5', Number.NaN, null]) {
      const err = await rejection(
        client.call('job.start', { hostId, domain: 'test', disk: 'vda', operation: { kind: 'pull' }, bandwidthBytesPerSec: bandwidthBytesPerSec as number }),
      );
      assert.equal(err.kind, 'invalid-request');
      assert.equal(err.issues[0]?.path, 'bandwidthBytesPerSec');
      assert.match(err.message, /bandwidthBytesPerSec/);
    }
  });

  it('refuses malformed names, unknown fields and unknown methods', async () => {
    const badDisk = await rejection(client.call('job.start', { hostId, domain: 'test', disk: '../etc', operation: { kind: 'pull' } }));
    assert.equal(badDisk.kind, 'invalid-request');
    assert.match(badDisk.message, /target name such as 'vda'/);
    const badDomain = await rejection(client.call('domain.get', { hostId, domain: 'a/b' }));
    assert.match(badDomain.message, /cannot contain "\/"/);
    const extra = await raw('domains.list', { hostId, surprise: 1 });
    assert.equal(extra.ok, false);
    const unknown = await raw('domain.delete', { hostId });
    assert.ok(!unknown.ok && unknown.error.kind === 'invalid-request' && /unknown method/.test(unknown.error.message));
  });

  it('reports a missing domain as not-found, keeping libvirt’s code', async () => {
    const err = await rejection(client.call('domain.get', { hostId, domain: 'no-such-domain' }));
    assert.equal(err.kind, 'not-found');
    assert.equal(err.libvirt?.code, 'VIR_ERR_NO_DOMAIN');
    assert.match(err.message, /no-such-domain/);
  });

  it('reports a missing disk by name, with the disks that exist', async () => {
    const err = await rejection(client.call('job.start', { hostId, domain: 'test', disk: 'vdz', operation: { kind: 'pull' } }));
    assert.equal(err.kind, 'not-found');
    assert.match(err.message, /test has no disk 'vdz'/);
  });

  it('reports an unknown host', async () => {
    const err = await rejection(client.call('domains.list', { hostId: 'nope' }));
    assert.equal(err.kind, 'not-found');
    assert.match(err.hint ?? '', /default/);
  });
});

describe('an unreachable URI', () => {
  it('leaves the host retrying with libvirt’s reason, and calls fail as unavailable', async () => {
    const t = await startTestCore({ uri: 'qemu+tcp://127.0.0.1:1/system' });
    try {
      const client = t.client;
      const [host] = await client.call('hosts.list', {});
      assert.equal(host?.state, 'retrying');
      assert.match(host?.reason ?? '', /cannot connect to qemu\+tcp:\/\/127\.0\.0\.1:1\/system/);
      assert.match(host?.hint ?? '', /libvirtd is not running or not reachable: start it/);
      assert.ok(host?.retryAt && host.retryAt > Date.now() - 1000, `the next try is announced: ${host?.retryAt}`);
      const err = await rejection(client.call('domains.list', { hostId: defaultHostId }));
      assert.equal(err.kind, 'unavailable');
      assert.match(err.message, /not connected/);
    } finally {
      await t.close();
    }
  });
});
