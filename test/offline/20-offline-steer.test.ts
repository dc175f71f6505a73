// Steering an offline job while it runs: a bandwidth change measured to take effect (progress
// over a window of bytes, waiting on the progress itself, never on a fixed sleep), and cancels
// mid-way that leave every image valid and the chain as it was.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readImageChain } from '../../src/main/core/offline/image-tool.ts';
import { OfflineJob, type OfflineProgress } from '../../src/main/core/offline/offline-job.ts';
import { QmpError } from '../../src/main/core/offline/qmp.ts';
import { chainBlockdevs, StorageDaemon, StorageDaemonError } from '../../src/main/core/offline/storage-daemon.ts';
import { assertChainClean, assertSameData, daemonsUnder, makeChain, MiB, useLabDir } from './offline-harness.ts';

async function progressPast(job: OfflineJob, bytes: number, timeoutMs = 60_000): Promise<{ at: number; p: OfflineProgress }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await job.progress();
    if (p && p.cur >= bytes) return { at: performance.now(), p };
    if (Date.now() > deadline) throw new Error(`the job did not pass ${bytes} bytes within ${timeoutMs} ms (at ${p?.cur ?? 'none'})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Bytes per second over the next `window` bytes, from the first progress sample at or after now. */
async function measureRate(job: OfflineJob, window: number): Promise<number> {
  const start = await progressPast(job, 1);
  const end = await progressPast(job, start.p.cur + window);
  return ((end.p.cur - start.p.cur) * 1000) / (end.at - start.at);
}

/** A full copy of `image` into a new qcow2 file at 1 MiB/s. */
function startCopy(image: string, destination: string): Promise<OfflineJob> {
  return OfflineJob.start({ domain: 'none', disk: 'vda', operation: { kind: 'copy', image, destination, format: 'qcow2', shallow: false }, bandwidthBytesPerSec: 1 * MiB });
}

test('a bandwidth change during an offline pull takes effect at once', async (t) => {
  // A fully allocated base, so every byte of progress is a byte copied under the limit.
  const chain = await makeChain(await useLabDir(t, 'speed'), { writes: [[[0, 64 * MiB]], [[0, 64 * 1024]]] });
  const job = await OfflineJob.start({ domain: 'none', disk: 'vda', operation: { kind: 'pull', image: chain.active, base: null }, bandwidthBytesPerSec: 2 * MiB });
  await progressPast(job, 1);
  const slow = await measureRate(job, 4 * MiB);
  await job.setSpeed(32 * MiB);
  assert.equal((await job.progress())?.bandwidthBytesPerSec, 32 * MiB);
  const fast = await measureRate(job, 16 * MiB);
  t.diagnostic(`rate at 2 MiB/s: ${(slow / MiB).toFixed(2)} MiB/s; after the change to 32 MiB/s: ${(fast / MiB).toFixed(2)} MiB/s`);
  assert.ok(slow < 2 * MiB * 1.5 && slow > 2 * MiB * 0.5, `the limit held: ${slow} B/s`);
  assert.ok(fast > slow * 4, `the raised limit took effect: ${fast} B/s against ${slow} B/s`);
  const outcome = await job.done;
  assert.equal(outcome.status, 'completed', outcome.message ?? '');
  assert.deepEqual(await assertChainClean(chain.active), [chain.active]);
  await assertSameData(chain, chain.active);
  assert.deepEqual(await daemonsUnder(chain.dir), []);
});

test('a commit cancelled mid-way leaves the chain as it was, every image clean', async (t) => {
  const chain = await makeChain(await useLabDir(t, 'cancel-commit'), { writes: [[[0, 8 * MiB]], [[0, 16 * MiB]], [[0, 1 * MiB]]] });
  const [base, middle, active] = chain.layers as [string, string, string];
  const job = await OfflineJob.start({ domain: 'none', disk: 'vda', operation: { kind: 'commit', image: active, top: middle, base }, bandwidthBytesPerSec: 1 * MiB });
  const ends: string[] = [];
  job.onEvent((e) => e.kind === 'end' && ends.push(e.outcome.status));
  await progressPast(job, 1 * MiB);
  const pid = job.daemonPid;
  assert.ok(pid);
  await job.cancel();
  const outcome = await job.done;
  assert.equal(outcome.status, 'cancelled');
  assert.deepEqual(ends, ['cancelled']);
  assert.deepEqual(outcome.chain.map((l) => l.path), [active, middle, base]);
  assert.ok(outcome.checks.length === 3 && outcome.checks.every((c) => c.clean), JSON.stringify(outcome.checks));
  assert.deepEqual(await assertChainClean(active), [active, middle, base]);
  await assertSameData(chain, active);
  assert.deepEqual(await daemonsUnder(chain.dir), []);
});

test('a copy cancelled mid-way names the file it leaves, which is valid too', async (t) => {
  const chain = await makeChain(await useLabDir(t, 'cancel-copy'), { writes: [[[0, 16 * MiB]], [[0, 1 * MiB]]] });
  const destination = join(chain.dir, 'moved.qcow2');
  const job = await startCopy(chain.active, destination);
  await progressPast(job, 1 * MiB);
  await job.cancel();
  const outcome = await job.done;
  assert.equal(outcome.status, 'cancelled');
  assert.equal(outcome.leftover, destination);
  assert.ok(existsSync(destination));
  assert.ok(outcome.checks.some((c) => c.path === destination && c.clean), JSON.stringify(outcome.checks));
  assert.deepEqual(await assertChainClean(chain.active), [chain.active, chain.layers[0]]);
  await assertSameData(chain, chain.active);
  assert.deepEqual(await daemonsUnder(chain.dir), []);
});

test('a daemon that does not quit is killed, and none is left behind', async (t) => {
  const chain = await makeChain(await useLabDir(t, 'kill'), { writes: [[[0, 16 * MiB]], [[0, 1 * MiB]]] });
  const job = await OfflineJob.start({
    domain: 'none',
    disk: 'vda',
    operation: { kind: 'pull', image: chain.active, base: null },
    bandwidthBytesPerSec: 1 * MiB,
    stopTimeoutMs: 1,
  });
  await progressPast(job, 1);
  const pid = job.daemonPid!;
  // SIGSTOP: the daemon can no longer answer `quit`, the way a hung process would not.
  process.kill(pid, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone, as it should be.
    }
  });
  await job.cancel().catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([job.done, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('stop did not kill the daemon')), 30_000)))]);
  clearTimeout(timer);
  assert.notEqual(outcome.status, 'completed');
  assert.deepEqual(await daemonsUnder(chain.dir), []);
  assert.ok(outcome.checks.every((c) => c.clean), JSON.stringify(outcome.checks));
});

test('QMP errors keep QEMU\'s class and words; a daemon refused at start leaves nothing running', async (t) => {
  const chain = await makeChain(await useLabDir(t, 'qmp-errors'), { writes: [[[0, 1 * MiB]], [[0, 65536]]] });
  const daemon = await StorageDaemon.start({ nodes: chainBlockdevs(await readImageChain(chain.active), new Set([0])) });
  try {
    await assert.rejects(daemon.qmp.execute('block-job-set-speed', { device: 'no-such-job', speed: 1 }), (err: unknown) => {
      return err instanceof QmpError && err.errorClass === 'DeviceNotActive' && /no-such-job/.test(err.desc) && err.command === 'block-job-set-speed';
    });
    await assert.rejects(daemon.qmp.execute('no-such-command'), (err: unknown) => err instanceof QmpError && err.errorClass === 'CommandNotFound');
  } finally {
    await daemon.stop();
  }
  assert.equal(daemon.alive, false);
  // A node QEMU cannot open: the daemon exits at once, and the error carries its words.
  await assert.rejects(
    StorageDaemon.start({ nodes: [{ driver: 'file', 'node-name': 'x', filename: `${chain.dir}/missing.qcow2` }] }),
    (err: unknown) => err instanceof StorageDaemonError && /exited/.test(err.message) && /missing\.qcow2/.test(err.message),
  );
  assert.deepEqual(await daemonsUnder(chain.dir), []);
});

test('a cancel as the job starts ends it cancelled, the daemon gone and no new file left', async (t) => {
  const chain = await makeChain(await useLabDir(t, 'cancel-at-start'), { writes: [[[0, 4 * MiB]], [[0, 65536]]] });
  const nodes = chainBlockdevs(await readImageChain(chain.active), new Set());
  // Aborted before the daemon could answer: the start kills the daemon it spawned.
  const abort = new AbortController();
  const starting = StorageDaemon.start({ nodes, signal: abort.signal });
  abort.abort();
  await assert.rejects(starting, (err: unknown) => err instanceof StorageDaemonError && err.cancelled);
  assert.deepEqual(await daemonsUnder(chain.dir), []);

  // Whatever step of its start the cancel meets (the new file made, the daemon starting, the job
  // being created), the job ends cancelled and undoes that step.
  const destination = join(chain.dir, 'copy.qcow2');
  const job = await startCopy(chain.active, destination);
  await job.cancel();
  const outcome = await job.done;
  assert.equal(outcome.status, 'cancelled', outcome.message ?? '');
  assert.deepEqual(await daemonsUnder(chain.dir), []);
  assert.ok(outcome.leftover === null ? !existsSync(destination) : outcome.leftover === destination, `leftover ${outcome.leftover}`);
  assert.deepEqual(await assertChainClean(chain.active), chain.layers.slice().reverse());
});
