// Strata killed mid-job (SIGKILL of the process that runs the engine) and started again: the
// intent record is found; a daemon still running is followed to the job's end and the definition
// rewritten, a dead one is reported with the chain as it was and every image checked.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { rewriteDiskChain, type DefinitionAccess } from '../../src/main/core/offline/domain-definition.ts';
import { readChainBitmaps } from '../../src/main/core/offline/bitmaps.ts';
import { IntentStore, type OfflineIntent } from '../../src/main/core/offline/intents.ts';
import { runTool } from '../../src/main/core/lab/images.ts';
import type { OfflineOperation } from '../../src/main/core/offline/plan.ts';
import { findLeftoverJobs } from '../../src/main/core/offline/recovery.ts';
import { settleOfflineJob } from '../../src/main/core/offline/settle.ts';
import { assertChainClean, assertSameData, daemonsUnder, makeChain, MiB, useLabDir } from './offline-harness.ts';

const child = fileURLToPath(new URL('./fixtures/offline-child.ts', import.meta.url));

/** Starts the engine in a child process and SIGKILLs it once the job moves data; resolves to the daemon's pid. */
function runAndKill(dataDir: string, operation: OfflineOperation, bandwidthBytesPerSec: number, type?: OfflineIntent['type']): Promise<number> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, JSON.stringify({ dataDir, operation, bandwidthBytesPerSec, type })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      out += chunk;
      const m = /running (\d+)\n/.exec(out);
      if (m) {
        proc.kill('SIGKILL');
        proc.once('exit', () => resolve(Number(m[1])));
      }
    });
    proc.once('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`the engine's process ended by itself (code ${code}) before it was killed: ${out}`));
    });
  });
}

/** A definition held in memory: the test's stand-in domain (the libvirt one is in 40-offline-domain). */
function memoryDefinition(path: string): DefinitionAccess & { xml: string } {
  const holder = {
    xml: `<domain type='qemu'>\n  <name>strata-offline-child</name>\n  <devices>\n    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='${path}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n  </devices>\n</domain>\n`,
    inactiveXml: async () => holder.xml,
    define: async (xml: string) => {
      holder.xml = xml;
    },
  };
  return holder;
}

test('killed mid-copy, the daemon lives on: found, followed to the end, and the definition rewritten', async (t) => {
  const dir = await useLabDir(t, 'recover-alive');
  const chain = await makeChain(dir, { writes: [[[0, 32 * MiB]], [[0, 1 * MiB]]] });
  const dataDir = join(dir, 'data');
  const destination = join(dir, 'moved.qcow2');
  const pid = await runAndKill(dataDir, { kind: 'copy', image: chain.active, destination, format: 'qcow2', shallow: false }, 1 * MiB);
  t.after(() => daemonsUnder(dir).then((pids) => pids.forEach((p) => process.kill(p, 'SIGKILL'))));
  assert.deepEqual(await daemonsUnder(dir), [pid], 'the daemon outlives the process that started it');

  const store = new IntentStore(dataDir);
  const leftovers = await findLeftoverJobs(store);
  assert.equal(leftovers.length, 1);
  const found = leftovers[0]!;
  assert.equal(found.daemon, 'alive');
  assert.equal(found.intent.step, 'job-started');
  if (found.daemon !== 'alive') return;
  const progress = await found.job.progress();
  assert.ok(progress && progress.cur > 0 && progress.bandwidthBytesPerSec === 1 * MiB, JSON.stringify(progress));
  await found.job.setSpeed(0);
  const outcome = await found.job.done;
  assert.equal(outcome.status, 'completed', outcome.message ?? '');
  assert.deepEqual(await daemonsUnder(dir), []);
  assert.deepEqual(await assertChainClean(destination), [destination]);
  await assertSameData(chain, destination);

  const definition = memoryDefinition(chain.active);
  const before = definition.xml;
  await settleOfflineJob(found.job.intent, true, store, definition);
  assert.equal(definition.xml, rewriteDiskChain(before, 'vda', [{ path: destination, format: 'qcow2' }]));
  assert.match(definition.xml, new RegExp(`<source file='${destination}'/>`));
  assert.deepEqual(await store.list(), [], 'the record goes once the job is settled');
});

test('killed mid-commit with its daemon: reported, the chain as it was, every image clean', async (t) => {
  const dir = await useLabDir(t, 'recover-dead');
  const chain = await makeChain(dir, { writes: [[[0, 8 * MiB]], [[0, 16 * MiB]], [[0, 1 * MiB]]] });
  const [base, middle, active] = chain.layers as [string, string, string];
  const dataDir = join(dir, 'data');
  const pid = await runAndKill(dataDir, { kind: 'commit', image: active, top: middle, base }, 1 * MiB);
  process.kill(pid, 'SIGKILL');
  assert.ok(await waitGone(dir), 'the daemon is gone');

  const store = new IntentStore(dataDir);
  const [found, ...more] = await findLeftoverJobs(store);
  assert.equal(more.length, 0);
  assert.ok(found && found.daemon === 'dead');
  if (found.daemon !== 'dead') return;
  assert.equal(found.dataComplete, false);
  assert.deepEqual(found.chainNow, [active, middle, base]);
  assert.deepEqual(found.checks.map((c) => [c.path, c.clean]), [[active, true], [middle, true], [base, true]]);
  assert.match(found.message, /keeps the chain it had/);
  assert.ok(found.intent.daemon && !existsSync(found.intent.daemon.runtimeDir), 'the dead daemon\'s runtime folder is removed');
  await assertSameData(chain, active);
  const definition = memoryDefinition(active);
  const before = definition.xml;
  await settleOfflineJob(found.intent, false, store, definition);
  assert.equal(definition.xml, before, 'an unfinished job leaves the definition alone');
  assert.deepEqual(await store.list(), []);
});

test('killed mid-backup with its daemon: recovered as a backup (its type recorded), no copy left over, the disk as it was', async (t) => {
  const dir = await useLabDir(t, 'recover-backup-dead');
  const chain = await makeChain(dir, { writes: [[[0, 24 * MiB]]] });
  // An earlier checkpoint's bitmap, as a backup before this one left it.
  await runTool('qemu-img', ['bitmap', '--add', '--enable', chain.active, 'strata-earlier']);
  const dataDir = join(dir, 'data');
  const destination = join(dir, 'vda.0.full.qcow2');
  const pid = await runAndKill(dataDir, { kind: 'backup', image: chain.active, destination, bitmap: 'strata-new', incremental: null }, 1 * MiB, 'backup');
  process.kill(pid, 'SIGKILL');
  assert.ok(await waitGone(dir), 'the daemon is gone');

  const store = new IntentStore(dataDir);
  const [found, ...more] = await findLeftoverJobs(store);
  assert.equal(more.length, 0);
  assert.ok(found && found.daemon === 'dead');
  if (found.daemon !== 'dead') return;
  assert.equal(found.intent.type, 'backup');
  assert.equal(found.leftover, null, 'the partial image belongs to its backup set, not to the user as a copy');
  assert.match(found.message, /during a backup of vda into .*vda\.0\.full\.qcow2.* the backup did not complete/);
  assert.ok(found.checks.every((c) => c.clean), JSON.stringify(found.checks));
  await assertSameData(chain, chain.active);
  // QEMU stores a new bitmap only when it closes the image, and marks the ones it loaded in use
  // while it has it open: a killed daemon leaves no new bitmap and the earlier one untrusted.
  const bitmaps = (await readChainBitmaps(chain.active))[0]!.bitmaps;
  assert.deepEqual(bitmaps.map((b) => [b.name, b.flags]), [['strata-earlier', ['in-use', 'auto']]]);
  await settleOfflineJob(found.intent, false, store, memoryDefinition(chain.active));
  assert.deepEqual(await store.list(), []);
});

test('killed mid-backup, the daemon lives on: followed to the end as a backup, its new bitmap kept', async (t) => {
  const dir = await useLabDir(t, 'recover-backup-alive');
  const chain = await makeChain(dir, { writes: [[[0, 24 * MiB]]] });
  const dataDir = join(dir, 'data');
  const destination = join(dir, 'vda.0.full.qcow2');
  await runAndKill(dataDir, { kind: 'backup', image: chain.active, destination, bitmap: 'strata-new', incremental: null }, 1 * MiB, 'backup');
  t.after(() => daemonsUnder(dir).then((pids) => pids.forEach((p) => process.kill(p, 'SIGKILL'))));
  const store = new IntentStore(dataDir);
  const [found] = await findLeftoverJobs(store);
  assert.ok(found && found.daemon === 'alive');
  if (found.daemon !== 'alive') return;
  assert.equal(found.intent.type, 'backup');
  await found.job.setSpeed(0);
  const outcome = await found.job.done;
  assert.equal(outcome.status, 'completed', outcome.message ?? '');
  await assertSameData(chain, destination);
  const bitmaps = (await readChainBitmaps(chain.active))[0]!.bitmaps;
  assert.deepEqual(bitmaps.map((b) => [b.name, b.flags]), [['strata-new', ['auto']]]);
  await settleOfflineJob(found.job.intent, true, store, memoryDefinition(chain.active));
  assert.deepEqual(await store.list(), []);
});

async function waitGone(dir: string): Promise<boolean> {
  for (let i = 0; i < 500; i++) {
    if ((await daemonsUnder(dir)).length === 0) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
