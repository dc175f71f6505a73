// Starting and stopping the core like a service: corrupt data files are moved aside and the core
// starts anyway; closing the core (what quitting does) waits for the history and leaves running
// block jobs to libvirt, where a new core finds them again.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { startTestCore } from './core-harness.ts';
import { MiB, previewAndStart, smallChain, waitForEnd, waitForJob } from './engine-harness.ts';
import { libvirt, sweepStaleLabDomains, TEST_URI, useLabDomain, virshBlockJobInfo, waitFor, type Connection } from '../lab/harness.ts';

describe('startup and shutdown', { timeout: 180_000 }, () => {
  let conn: Connection;
  const dataDirs: string[] = [];

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
  });
  after(async () => {
    await conn?.close();
    // Once every test's cores are closed: a core writes its history into its folder as it closes,
    // and a test's own after-hooks run in the order they were added, the folder's first.
    await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  const freshDataDir = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-data-'));
    dataDirs.push(dir);
    return dir;
  };

  it('corrupt hosts.json and history.json are moved aside; the core starts with empty ones', async (ctx) => {
    const dir = await freshDataDir();
    await writeFile(join(dir, 'hosts.json'), '{"version":1,"hosts":[{"id":"h1"}]}');
    await writeFile(join(dir, 'history.json'), '{ truncated');
    const t = await startTestCore({ uri: 'test:///default', dataDir: dir });
    ctx.after(() => t.close());

    assert.equal(t.core.startupWarnings.length, 2);
    assert.match(t.core.startupWarnings[0] ?? '', /^hosts\.json was not valid \(hosts\.0\.uri: .*\); it was moved aside to .*hosts\.json\.corrupt-/);
    assert.match(t.core.startupWarnings[1] ?? '', /^history\.json was not valid \(not JSON: /);
    const files = (await readdir(dir)).sort();
    assert.ok(files.some((f) => /^hosts\.json\.corrupt-\d{4}-\d\d-\d\dT/.test(f)), files.join(', '));
    assert.ok(files.some((f) => /^history\.json\.corrupt-/.test(f)), files.join(', '));
    assert.equal(await readFile(join(dir, files.find((f) => f.startsWith('history.json.corrupt-'))!), 'utf8'), '{ truncated', 'kept as it was');

    assert.deepEqual(
      (await t.client.call('hosts.list', {})).map((h) => h.id),
      [hostId],
    );
    assert.deepEqual(await t.client.call('history.list', {}), []);
  });

  it('close() resolves once the finished job is in history.json', async (ctx) => {
    const dir = await freshDataDir();
    const t = await startTestCore({ uri: TEST_URI, dataDir: dir });
    ctx.after(() => t.close());
    const lab = await useLabDomain(ctx, conn, smallChain);
    const { job } = await previewAndStart(t.client, { hostId, domain: lab.name, disk: 'vda' }, { kind: 'pull' });
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    await t.close();
    const saved = JSON.parse(await readFile(join(dir, 'history.json'), 'utf8')) as { jobs: { id: string; domain: string; phase: string }[] };
    // Jobs other clients run on the same daemon are in the history too: only this lab's count here.
    assert.deepEqual(
      saved.jobs.filter((j) => j.domain === lab.name).map((j) => [j.id, j.phase]),
      [[job.id, 'completed']],
    );
  });

  it('closing the core leaves a running pull to libvirt; a new core finds it again', async (ctx) => {
    const dir = await freshDataDir();
    // 32 MiB at 1 MiB/s: still at work long after the core has closed. Destroying the lab's
    // domain afterwards ends the job with it.
    const lab = await useLabDomain(ctx, conn, { ...smallChain, baseDataBytes: 32 * MiB });
    const first = await startTestCore({ uri: TEST_URI, dataDir: dir });
    ctx.after(() => first.close());
    const { job } = await previewAndStart(first.client, { hostId, domain: lab.name, disk: 'vda' }, { kind: 'pull' }, { bandwidthBytesPerSec: MiB });
    await waitForJob(first, (j) => j.id === job.id && j.end > 1, { what: 'the pull to show progress' });

    const started = Date.now();
    await first.close();
    ctx.diagnostic(`core closed in ${Date.now() - started} ms`);
    assert.ok(Date.now() - started < 5000, 'within the shells’ bound');

    const info = await virshBlockJobInfo(lab.name, 'vda');
    assert.equal(info['type'], 'Block Pull', `virsh blockjob --info after close: ${JSON.stringify(info)}`);
    assert.equal(info['bandwidth'], String(MiB), 'still at its limit');
    const cur = Number(info['cur']);
    await waitFor(async () => Number((await virshBlockJobInfo(lab.name, 'vda'))['cur']) > cur, { timeoutMs: 10_000, what: 'the pull to keep moving' });

    const second = await startTestCore({ uri: TEST_URI, dataDir: dir });
    ctx.after(() => second.close());
    const found = await waitFor(async () => (await second.client.call('jobs.list', { hostId })).find((j) => j.domain === lab.name && j.disk === 'vda'), {
      timeoutMs: 10_000,
      what: 'the new core to find the running pull',
    });
    assert.equal(found.type, 'pull');
    assert.equal(found.phase, 'running');
  });
});
