// The data folder's files on start: absent, valid, invalid (moved aside, never fatal), unreadable.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { z } from 'zod';
import { prepareDataDir, StartupError, startupFailureText } from '../../src/main/core/storage/data-dir.ts';
import { JobHistory } from '../../src/main/core/storage/history.ts';
import { noLimits, SavedHosts } from '../../src/main/core/storage/saved-hosts.ts';
import { asidePath, readJsonFile, removeJson, writeJson } from '../../src/main/core/storage/json-file.ts';
import type { Job } from '../../src/shared/model.ts';

const at = new Date('2026-11-29T18:50:00.123Z');
const schema = z.object({ version: z.literal(1) });

function finishedJob(id: string): Job {
  return {
    id,
    hostId: 'default',
    domain: 'vm1',
    disk: 'vda',
    type: 'pull',
    phase: 'completed',
    cur: 100,
    end: 100,
    progress: 1,
    bandwidthBytesPerSec: 0,
    requestedBandwidthBytesPerSec: 0,
    afterReady: null,
    rateBytesPerSec: null,
    etaSeconds: null,
    startedAt: 1000,
    updatedAt: 2000,
    endedAt: 2000,
    origin: 'strata',
    outcome: 'completed',
    leftover: null,
  };
}

describe('data files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-storage-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('an absent file reads as nothing, with nothing to tell', async () => {
    assert.deepEqual(await readJsonFile(join(dir, 'hosts.json'), schema), { value: undefined, warning: null });
  });

  it('a valid file reads as its value', async () => {
    await writeFile(join(dir, 'x.json'), '{"version":1}');
    assert.deepEqual(await readJsonFile(join(dir, 'x.json'), schema), { value: { version: 1 }, warning: null });
  });

  it('invalid JSON is moved aside to <name>.corrupt-<time>, kept byte for byte, and named in the warning', async () => {
    const path = join(dir, 'hosts.json');
    await writeFile(path, '{"version": 1,');
    const read = await readJsonFile(path, schema, at);
    assert.equal(read.value, undefined);
    const aside = asidePath(path, at);
    assert.equal(aside, `${path}.corrupt-2026-11-29T18-50-00-123Z`);
    assert.equal(await readFile(aside, 'utf8'), '{"version": 1,');
    assert.deepEqual(await readdir(dir), ['hosts.json.corrupt-2026-11-29T18-50-00-123Z']);
    assert.match(read.warning ?? '', /hosts\.json was not valid \(not JSON: .*\); it was moved aside to .*hosts\.json\.corrupt-2026-11-29T18-50-00-123Z/);
  });

  it('a file failing its schema is moved aside too, and the warning says which field', async () => {
    const path = join(dir, 'x.json');
    await writeFile(path, '{"version":2}');
    const read = await readJsonFile(path, schema, at);
    assert.equal(read.value, undefined);
    assert.match(read.warning ?? '', /\(version: /);
  });

  it('an unreadable file is a StartupError naming it and what to do', async () => {
    // A folder where the file should be fails for root too, which permissions would not.
    const path = join(dir, 'hosts.json');
    await mkdir(path);
    const err = await readJsonFile(path, schema).then(
      () => assert.fail('expected a StartupError'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof StartupError);
    assert.match(err.message, /cannot read .*hosts\.json \(EISDIR.*\): give this user read and write access to it, or move it aside/);
  });

  it('SavedHosts: saved hosts read back; a corrupt file gives no hosts and a warning', async () => {
    const store = new SavedHosts(dir);
    assert.deepEqual(await store.load(), { hosts: [], warning: null });
    const saved = await store.add({ uri: 'qemu+ssh://a/system', label: 'a', readOnly: false, limits: noLimits });
    assert.deepEqual((await new SavedHosts(dir).load()).hosts, [saved]);

    await writeFile(store.path, JSON.stringify({ version: 1, hosts: [{ id: 'h', uri: '', label: 'a', readOnly: false, limits: noLimits }] }));
    const again = await new SavedHosts(dir).load();
    assert.deepEqual(again.hosts, []);
    assert.match(again.warning ?? '', /hosts\.json was not valid \(hosts\.0\.uri: /);
  });

  it('JobHistory: finished jobs read back against the Job schema; flush waits for the last write', async () => {
    const history = new JobHistory(dir);
    await history.load();
    void history.add(finishedJob('a'));
    void history.add(finishedJob('b'));
    await history.flush();
    const back = new JobHistory(dir);
    assert.deepEqual(await back.load(), { warning: null });
    assert.deepEqual(
      back.list().map((j) => j.id),
      ['a', 'b'],
    );
  });

  it('JobHistory: jobs ending together share one waiting write, which carries them all', async () => {
    const history = new JobHistory(dir);
    await history.load();
    const saves = Array.from({ length: 50 }, (_, i) => history.add(finishedJob(`j${i}`)));
    assert.ok(new Set(saves).size <= 2, `${new Set(saves).size} writes for 50 jobs ended in one turn`);
    await saves[49];
    const back = new JobHistory(dir);
    await back.load();
    assert.equal(back.list().length, 50, 'the last promise resolves once every job is on disk');
  });

  it('JobHistory: a file from before leftovers were recorded reads back; a replaced record is saved', async () => {
    const history = new JobHistory(dir);
    const { leftover: _none, ...older } = finishedJob('old');
    const copy: Job = { ...finishedJob('copy'), type: 'copy', phase: 'cancelled', leftover: { path: '/v/c.qcow2', partial: true, bytes: 4096, fileId: '1:2', status: 'left' } };
    await writeFile(history.path, JSON.stringify({ version: 1, jobs: [older, copy] }));
    assert.deepEqual(await history.load(), { warning: null });
    assert.equal(history.find('old')?.leftover, null, 'an older record has no leftover');
    await history.replace({ ...copy, leftover: { ...copy.leftover!, status: 'removed' } });
    await history.replace({ ...finishedJob('unknown-id') });
    const back = new JobHistory(dir);
    await back.load();
    assert.deepEqual(
      back.list().map((j) => [j.id, j.leftover?.status ?? null]),
      [
        ['old', null],
        ['copy', 'removed'],
      ],
    );
  });

  it('JobHistory: an entry that is not a finished Job moves the file aside', async () => {
    const history = new JobHistory(dir);
    const running = { ...finishedJob('a'), phase: 'running' };
    await writeFile(history.path, JSON.stringify({ version: 1, jobs: [finishedJob('ok'), running] }));
    const read = await history.load();
    assert.match(read.warning ?? '', /history\.json was not valid \(jobs\.1\.phase: phase must be one of completed, failed, cancelled, unknown\)/);
    assert.deepEqual(history.list(), []);
    const files = await readdir(dir);
    assert.equal(files.length, 1);
    assert.match(files[0] ?? '', /^history\.json\.corrupt-/);
  });

  it('JobHistory: a failed write is logged, not thrown, and flush still resolves', async () => {
    const history = new JobHistory(join(dir, 'file'));
    await writeFile(join(dir, 'file'), 'a file where the folder should be');
    await history.add(finishedJob('a'));
    await history.flush();
    assert.equal(history.list().length, 1, 'the job stays in memory for the next write');
  });
});

describe('prepareDataDir', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-data-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('makes the folder', async () => {
    await prepareDataDir(join(dir, 'a/b'));
    assert.deepEqual(await readdir(join(dir, 'a')), ['b']);
  });

  it('names a folder it cannot use, and says what to do', async () => {
    await writeFile(join(dir, 'file'), '');
    const err = await prepareDataDir(join(dir, 'file/data')).then(
      () => assert.fail('expected a StartupError'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof StartupError);
    assert.match(startupFailureText(err), /^cannot use the data folder .*file\/data \(ENOTDIR.*\): give this user read and write access to it .*STRATA_DATA_DIR/);
  });

  // /proc refuses new entries with ENOENT although it exists: Node's own recursive mkdir never returns there.
  it('names a folder the file system will not create, instead of trying for ever', async () => {
    const err = await prepareDataDir('/proc/strata-data').then(
      () => assert.fail('expected a StartupError'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof StartupError);
    assert.match(startupFailureText(err), /^cannot use the data folder \/proc\/strata-data \(ENOENT/);
  });
});

describe('startupFailureText', () => {
  it('is one line without the addon’s own "strata: " prefix', () => {
    assert.equal(startupFailureText(new Error('strata: the addon is not built:\n  run `npm install`')), 'the addon is not built: run `npm install`');
  });
});

describe('writeJson and removeJson', () => {
  it('take changes of one file in the order asked: racing writes all land, the last stays, and a removal after them stays removed', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-json-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'record.json');
    // Not awaited one by one: an offline job's steps and its limit change write its record at once.
    await Promise.all(Array.from({ length: 20 }, (_, i) => writeJson(path, { version: 1, step: i })));
    assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { version: 1, step: 19 });
    await Promise.all([writeJson(path, { version: 1, step: 20 }), removeJson(path), writeJson(path, { version: 1, step: 21 }), removeJson(path)]);
    assert.deepEqual(await readdir(dir), [], 'removed last, and no temporary file left');
  });
});
