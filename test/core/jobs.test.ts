// Jobs through the contract over the in-memory transport, against real libvirtd + QEMU:
// what the UI relies on (events that end jobs, the limit in bytes/s, clear refusals).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StrataClient } from '../../src/shared/bridge.ts';
import type { Events } from '../../src/shared/contract.ts';
import { StrataError } from '../../src/shared/errors.ts';
import type { Job } from '../../src/shared/model.ts';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { startTestCore, type TestCore } from './core-harness.ts';
import { createTestLab, diskChain, libvirt, sweepStaleLabDomains, TEST_URI, virsh, virshBlockJobInfo, waitFor, type Connection, type TestLab } from '../lab/harness.ts';

const MiB = 1024 * 1024;

describe('block jobs through the contract', { timeout: 180_000 }, () => {
  let conn: Connection;
  let lab: TestLab;
  let core: TestCore;
  let client: StrataClient;
  const jobs: Job[] = [];
  const changed: Events['domain.changed'][] = [];

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
    lab = await createTestLab(conn, { tag: 'core-jobs' });
    core = await startTestCore({ uri: TEST_URI });
    client = core.client;
    client.on('job', (j) => jobs.push(j));
    client.on('domain.changed', (c) => changed.push(c));
  });
  after(async () => {
    await core?.close();
    await lab?.dispose();
    await conn?.close();
  });

  const ref = () => ({ hostId, domain: lab.name, disk: 'vda' });
  const pull = () => ({ ...ref(), operation: { kind: 'pull' } as const });
  const lastJob = () => jobs.filter((j) => j.domain === lab.name).at(-1);

  it('starts a throttled pull and reports it, with its limit in bytes/s', async () => {
    const job = await client.call('job.start', { ...ref(), operation: { kind: 'pull' }, bandwidthBytesPerSec: MiB });
    assert.equal(job.type, 'pull');
    assert.equal(job.phase, 'running');
    assert.equal(job.origin, 'strata');
    assert.equal((await virshBlockJobInfo(lab.name, 'vda'))['bandwidth'], String(MiB));
    const listed = await client.call('jobs.list', { hostId });
    assert.ok(listed.some((j) => j.domain === lab.name && j.phase === 'running'));
    await waitFor(() => (lastJob()?.end ?? 0) > 1, { what: 'a polled progress' });
  });

  it('refuses a second pull on the busy disk, saying why', async () => {
    await assert.rejects(client.call('job.start', pull()), (err: StrataError) => {
      assert.equal(err.kind, 'conflict');
      assert.match(err.message, /already has a pull job running/);
      assert.match(err.hint ?? '', /abort it/);
      return true;
    });
  });

  it('changes the limit of the running job', async () => {
    const job = await client.call('job.setSpeed', { ...ref(), bandwidthBytesPerSec: 2 * MiB });
    assert.equal(job.bandwidthBytesPerSec, 2 * MiB);
    assert.equal((await virshBlockJobInfo(lab.name, 'vda'))['bandwidth'], String(2 * MiB));
  });

  it('aborts: the job ends cancelled (from libvirt’s event) and the chain is intact', async () => {
    const job = await client.call('job.abort', ref());
    assert.equal(job.phase, 'aborting');
    await waitFor(() => lastJob()?.phase === 'cancelled', { what: 'a cancelled job event' });
    assert.equal(diskChain(await virsh(['dumpxml', lab.name]), 'vda').length, 3);
  });

  it('refuses speed and abort when the disk has no job', async () => {
    await assert.rejects(client.call('job.abort', ref()), (err: StrataError) => err.kind === 'not-found' && /no block job/.test(err.message));
    await assert.rejects(client.call('job.setSpeed', { ...ref(), bandwidthBytesPerSec: MiB }), (err: StrataError) => err.kind === 'not-found');
  });

  it('pulls to completion: completed event, domain.changed, and a one-layer chain', async () => {
    changed.length = 0;
    await client.call('job.start', pull());
    await waitFor(() => lastJob()?.phase === 'completed', { timeoutMs: 60_000, what: 'a completed job event' });
    assert.equal(lastJob()?.progress, 1);
    await waitFor(() => changed.some((c) => c.domain === lab.name), { what: 'domain.changed' });
    const detail = await client.call('domain.get', { hostId, domain: lab.name });
    assert.deepEqual(
      detail.disks.find((d) => d.target === 'vda')?.chain.map((l) => l.path),
      [lab.layers[2]],
    );
  });

  it('refuses to pull a disk that has no backing image', async () => {
    await assert.rejects(client.call('job.start', pull()), (err: StrataError) => {
      assert.equal(err.kind, 'conflict');
      assert.match(err.message, /nothing to pull/);
      return true;
    });
  });
});
