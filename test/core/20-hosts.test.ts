// Hosts: a remote host over libvirt's remote driver (qemu+tcp, through the test's own forwarder on
// loopback, to this machine's libvirtd) next to the local default host, saved hosts that survive a
// restart of the app, removal, and read-only hosts that watch but never act.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultHostId } from '../../src/main/core/api/core.ts';
import type { HostInfo } from '../../src/shared/model.ts';
import { startTestCore, type TestCore } from './core-harness.ts';
import { liveChain, MiB, paths, previewAndStart, rejection, smallChain, waitForEnd, waitForJob } from './engine-harness.ts';
import { libvirt, sweepStaleLabDomains, TEST_URI, useLabDomain, virshBlockJobInfo, type Connection } from '../lab/harness.ts';
import { startRemoteForwarder, type RemoteForwarder } from '../lab/remote-forwarder.ts';

describe('hosts', { timeout: 120_000 }, () => {
  let conn: Connection;
  // One for the whole file: a saved host must find the same URI again in a new core.
  let forwarder: RemoteForwarder;
  let tcpUri: string;

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
    forwarder = await startRemoteForwarder();
    tcpUri = forwarder.uri;
  });
  after(async () => {
    await conn?.close();
    await forwarder?.close();
  });

  it('a qemu+tcp host works alongside the local default host: same domains, and jobs run through it', async (ctx) => {
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    const l = await useLabDomain(ctx, conn, smallChain);

    const tcp = await t.client.call('hosts.add', { uri: tcpUri, label: 'loopback over TCP' });
    assert.equal(tcp.state, 'connected', tcp.reason ?? '');
    assert.equal(tcp.uri, tcpUri);
    assert.equal(tcp.label, 'loopback over TCP');
    assert.equal(tcp.saved, true);
    assert.equal(tcp.readOnly, false);
    assert.notEqual(tcp.id, defaultHostId);
    const hosts = await t.client.call('hosts.list', {});
    assert.deepEqual(hosts.map((h) => [h.id, h.state]).sort(), [[defaultHostId, 'connected'], [tcp.id, 'connected']].sort());

    for (const hostId of [defaultHostId, tcp.id]) {
      const names = (await t.client.call('domains.list', { hostId })).map((d) => d.name);
      assert.ok(names.includes(l.name), `${hostId} lists ${l.name}`);
    }
    const overTcp = await t.client.call('domain.get', { hostId: tcp.id, domain: l.name });
    const local = await t.client.call('domain.get', { hostId: defaultHostId, domain: l.name });
    assert.deepEqual(overTcp.disks, local.disks);

    const ref = { hostId: tcp.id, domain: l.name, disk: 'vda' };
    const { preview, job } = await previewAndStart(t.client, ref, { kind: 'pull' }, { bandwidthBytesPerSec: MiB });
    assert.equal(job.hostId, tcp.id);
    assert.equal((await virshBlockJobInfo(l.name, 'vda'))['bandwidth'], String(MiB), 'the job runs, throttled as asked over TCP');
    await t.client.call('job.setSpeed', { ...ref, bandwidthBytesPerSec: 0 });
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.equal(ended.hostId, tcp.id);
    assert.deepEqual(await liveChain(l.name), paths(preview.after));

    const again = await rejection(t.client.call('hosts.add', { uri: tcpUri }));
    assert.equal(again.kind, 'conflict');
    assert.match(again.message, /already a host/);
  });

  it('saved hosts and their limits survive a new core on the same data dir; hosts.remove forgets them', async (ctx) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-hosts-'));
    ctx.after(() => rm(dataDir, { recursive: true, force: true }));
    const limits = { maxConcurrentJobs: 2, bandwidthBudgetBytesPerSec: 8 * MiB };

    let added: HostInfo;
    let readOnly: HostInfo;
    {
      const first = await startTestCore({ uri: TEST_URI, dataDir });
      try {
        added = await first.client.call('hosts.add', { uri: tcpUri, label: 'saved over TCP' });
        await first.client.call('hosts.setLimits', { hostId: added.id, ...limits });
        // Read-only on the same URI as the default host is another host, saved too.
        readOnly = await first.client.call('hosts.add', { uri: TEST_URI, label: 'local, read-only', readOnly: true });
        assert.equal(readOnly.readOnly, true);
      } finally {
        await first.close();
      }
    }

    const second = await startTestCore({ uri: TEST_URI, dataDir });
    try {
      const hosts = await second.client.call('hosts.list', {});
      const back = hosts.find((h) => h.id === added.id);
      assert.ok(back, `the saved host is back: ${JSON.stringify(hosts)}`);
      assert.equal(back.uri, tcpUri);
      assert.equal(back.label, 'saved over TCP');
      assert.equal(back.saved, true);
      assert.equal(back.state, 'connected', back.reason ?? '');
      assert.deepEqual(back.limits, limits);
      const ro = hosts.find((h) => h.id === readOnly.id);
      assert.ok(ro, `the read-only host on the default URI is back too: ${JSON.stringify(hosts.map((h) => [h.id, h.uri, h.readOnly]))}`);
      assert.equal(ro.readOnly, true);

      const notDefault = await rejection(second.client.call('hosts.remove', { hostId: defaultHostId }));
      assert.equal(notDefault.kind, 'conflict');
      assert.match(notDefault.message, /default host and cannot be removed/);

      assert.deepEqual(await second.client.call('hosts.remove', { hostId: added.id }), { removed: added.id });
      assert.deepEqual(await second.client.call('hosts.remove', { hostId: readOnly.id }), { removed: readOnly.id });
      assert.ok(second.events.some((e) => e.event === 'host.removed' && 'hostId' in e.data && e.data.hostId === added.id));
      assert.deepEqual((await second.client.call('hosts.list', {})).map((h) => h.id), [defaultHostId]);
      const gone = await rejection(second.client.call('domains.list', { hostId: added.id }));
      assert.equal(gone.kind, 'not-found');
    } finally {
      await second.close();
    }

    const third = await startTestCore({ uri: TEST_URI, dataDir });
    try {
      assert.deepEqual((await third.client.call('hosts.list', {})).map((h) => h.id), [defaultHostId]);
    } finally {
      await third.close();
    }
  });

  it('a read-only host lists domains and watches jobs, but refuses to start or steer any', async (ctx) => {
    const t: TestCore = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    const l = await useLabDomain(ctx, conn, smallChain);
    const ro = await t.client.call('hosts.add', { uri: tcpUri, label: 'watch only', readOnly: true });
    assert.equal(ro.state, 'connected', ro.reason ?? '');
    assert.equal(ro.readOnly, true);

    assert.ok((await t.client.call('domains.list', { hostId: ro.id })).some((d) => d.name === l.name));
    const detail = await t.client.call('domain.get', { hostId: ro.id, domain: l.name });
    assert.deepEqual(paths(detail.disks[0]?.chain ?? []), [...l.layers].reverse());

    const ref = { hostId: ro.id, domain: l.name, disk: 'vda' };
    const refusals = [
      t.client.call('job.start', { ...ref, operation: { kind: 'pull' } }),
      t.client.call('disk.snapshot', ref),
      t.client.call('job.abort', ref),
      t.client.call('job.pivot', ref),
      t.client.call('job.setSpeed', { ...ref, bandwidthBytesPerSec: MiB }),
      t.client.call('lab.create', { hostId: ro.id }),
    ];
    for (const call of refusals) {
      const err = await rejection(call);
      assert.equal(err.kind, 'conflict');
      assert.match(err.message, /watch only is connected read-only: Strata can watch its jobs but not start or steer them/);
      assert.match(err.hint ?? '', /without read-only/);
    }
    assert.deepEqual(await virshBlockJobInfo(l.name, 'vda'), {}, 'nothing was started');

    // It still sees a job the writable host starts.
    const job = await t.client.call('job.start', { hostId: defaultHostId, domain: l.name, disk: 'vda', operation: { kind: 'pull' }, bandwidthBytesPerSec: MiB });
    const seen = await waitForJob(t, (j) => j.hostId === ro.id && j.domain === l.name, { what: 'the read-only host to see the job' });
    assert.equal(seen.origin, 'external');
    assert.equal(seen.type, 'pull');
    await t.client.call('job.abort', { hostId: defaultHostId, domain: l.name, disk: 'vda' });
    assert.equal((await waitForEnd(t, job.id)).phase, 'cancelled');
    assert.equal((await waitForEnd(t, seen.id)).phase, 'cancelled');
  });
});
