// The link to a remote host (qemu+tcp through the test's own forwarder on loopback) goes silent
// for 30 s under a running job, then its connections are cut: the host shows lost, retrying, then
// connected again; while it could not see the job, Strata sends no progress for it; afterwards
// the same job is followed to its end.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Events } from '../../src/shared/contract.ts';
import type { Job } from '../../src/shared/model.ts';
import { engineSuite, liveChain, MiB, paths, previewAndStart, sleep, waitForEnd, waitForJob } from '../core/engine-harness.ts';
import { waitFor } from '../lab/harness.ts';
import { startRemoteForwarder, type RemoteForwarder } from '../lab/remote-forwarder.ts';

const CUT_MS = 30_000;

describe('a remote host cut off for 30 s', { timeout: 150_000 }, () => {
  const t = engineSuite();
  let forwarder: RemoteForwarder;

  before(async () => {
    forwarder = await startRemoteForwarder();
  });
  after(async () => {
    await forwarder?.close();
  });

  it('lost → retrying → connected, no progress claimed while away, and the job followed to its end', async (ctx) => {
    const host = await t.client.call('hosts.add', { uri: forwarder.uri, label: 'remote over TCP' });
    assert.equal(host.state, 'connected', host.reason ?? '');
    // 32 MiB at 1 MiB/s: still running when the link comes back.
    const l = await t.lab(ctx, { virtualSize: 64 * MiB, baseDataBytes: 48 * MiB, overlayDataBytes: MiB });
    const ref = { hostId: host.id, domain: l.name, disk: 'vda' };
    const { preview, job } = await previewAndStart(t.client, ref, { kind: 'pull' }, { bandwidthBytesPerSec: MiB });
    await waitForJob(t, (j) => j.id === job.id && j.cur > 0, { what: 'progress over TCP' });

    const from = t.events.length;
    forwarder.pause();
    const pausedAt = Date.now();
    await sleep(CUT_MS);
    forwarder.cut();
    forwarder.resume();
    const cutAt = Date.now();

    const timeline = () =>
      t.events.slice(from).flatMap((e, i) => (e.event === 'host' && (e.data as Events['host']).id === host.id ? [{ i, state: (e.data as Events['host']).state }] : []));
    await waitFor(() => timeline().some((h) => h.state === 'connected'), { timeoutMs: 60_000, what: 'the remote host to reconnect' });
    const states = timeline().map((h) => h.state).filter((s, i, all) => s !== all[i - 1]);
    ctx.diagnostic(`host states: ${states.join(' → ')}; reconnected ${Date.now() - cutAt} ms after the cut`);
    const lost = states.indexOf('lost');
    const retrying = states.indexOf('retrying', lost);
    assert.ok(lost >= 0 && retrying > lost && states.indexOf('connected', retrying) > retrying, `lost → retrying → connected: ${states.join(' → ')}`);
    const lostEvent = t.events.slice(from).find((e) => e.event === 'host' && (e.data as Events['host']).state === 'lost');
    assert.ok(lostEvent, 'a lost event');
    ctx.diagnostic(`lost because: ${(lostEvent.data as Events['host']).reason}; ${CUT_MS} ms silent link`);

    // From the silence to the reconnection, no event may say the job moved: nothing was seen.
    const back = from + timeline().find((h) => h.state === 'connected')!.i;
    const blind = t.events.slice(from, back).filter((e) => e.event === 'job' && (e.data as Job).hostId === host.id) as { data: Job }[];
    let lastCur = (t.events.slice(0, from).filter((e) => e.event === 'job' && (e.data as Job).id === job.id).at(-1)?.data as Job).cur;
    for (const e of blind) {
      assert.equal(e.data.cur, lastCur, `no progress claimed while the link was silent: ${JSON.stringify(e.data)}`);
      lastCur = e.data.cur;
    }
    ctx.diagnostic(`${blind.length} job events for the host while it could not see (none with progress); silent for ${cutAt - pausedAt} ms`);

    const listed = (await t.client.call('jobs.list', { hostId: host.id })).filter((j) => j.domain === l.name);
    assert.deepEqual(listed.map((j) => [j.id, j.phase]), [[job.id, 'running']], 'the same job, still running');
    await t.client.call('job.setSpeed', { ...ref, bandwidthBytesPerSec: 0 });
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(l.name), paths(preview.after));
    // The local default host sees the same job as one started elsewhere; the remote host knows
    // only its own.
    const remoteEvents = t.events.filter((e) => e.event === 'job' && (e.data as Job).hostId === host.id && (e.data as Job).domain === l.name);
    assert.ok(remoteEvents.every((e) => (e.data as Job).id === job.id), 'no second job on the remote host');
  });
});
