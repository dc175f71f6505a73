// Intent records: written whole (beside, then renamed), listed in order, and a record that is not
// what Strata writes is moved aside rather than stopping the start-up.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { IntentStore, type OfflineIntent } from '../../src/main/core/offline/intents.ts';

const intent = (jobId: string): OfflineIntent => ({
  version: 1,
  jobId,
  domain: 'web',
  disk: 'vda',
  operation: { kind: 'pull', image: '/img/top.qcow2', base: null },
  chainBefore: [{ path: '/img/top.qcow2', format: 'qcow2', backingRecorded: 'base.qcow2' }, { path: '/img/base.qcow2', format: 'qcow2', backingRecorded: null }],
  chainAfter: [{ path: '/img/top.qcow2', format: 'qcow2' }],
  target: null,
  step: 'planned',
  daemon: null,
  qmpJobId: 'strata-1',
  bandwidthBytesPerSec: 0,
  startedAt: '2026-12-03T00:00:00.000Z',
  updatedAt: '2026-12-03T00:00:00.000Z',
});

test('records are written, updated, listed and removed; a bad one is moved aside', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-intents-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new IntentStore(dir);
  assert.deepEqual(await store.list(), []);
  await store.write(intent('offline-b'));
  await store.write(intent('offline-a'));
  await store.write({ ...intent('offline-a'), step: 'daemon-started', daemon: { pid: 42, socket: '/run/x/qmp.sock', runtimeDir: '/run/x' } });
  const listed = await store.list();
  assert.deepEqual(listed.map((i) => [i.jobId, i.step]), [['offline-a', 'daemon-started'], ['offline-b', 'planned']]);
  assert.equal(listed[0]!.daemon?.pid, 42);
  await writeFile(join(store.dir, 'offline-c.json'), '{"version": 1, "jobId": "../../etc"}');
  assert.deepEqual((await store.list()).map((i) => i.jobId), ['offline-a', 'offline-b']);
  assert.ok((await readdir(store.dir)).some((n) => n.startsWith('offline-c.json.corrupt-')));
  await store.remove('offline-a');
  await store.remove('offline-a');
  assert.deepEqual((await store.list()).map((i) => i.jobId), ['offline-b']);
  assert.ok(!(await readdir(store.dir)).some((n) => n.endsWith('.tmp')));
});
