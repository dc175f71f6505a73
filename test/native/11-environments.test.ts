// The addon in several environments at once (Node worker threads, as Electron windows or a
// utility process would load it): each environment has its own call queue, all share libvirt's
// one event loop, and an environment torn down with calls in flight takes nobody with it and
// closes its connections. (Such an environment leaves behind what N-API cannot free: each
// unsettled Promise's 8-byte handle, as LeakSanitizer shows when this file runs under the stress
// build.)
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { libvirt, TEST_URI, waitFor } from '../lab/harness.ts';

const ADDON = createRequire(import.meta.url).resolve('../../native/index.js');

// CommonJS run with `eval`, so the worker needs no loader: opens test:///default, fires `calls`
// state() calls without awaiting them, says so, and with `finish` waits for all, closes, and
// reports how many settled (then has nothing left to do and must end on its own).
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const libvirt = require(workerData.addon);
(async () => {
  const conn = await libvirt.open('test:///default');
  const dom = await conn.lookupByName('test');
  let settled = 0;
  for (let i = 0; i < workerData.calls; i++) dom.state().then(() => settled++, () => settled++);
  parentPort.postMessage({ what: 'started' });
  if (!workerData.finish) return;
  while (settled < workerData.calls) await new Promise((r) => setTimeout(r, 5));
  await conn.close();
  parentPort.postMessage({ what: 'done', settled });
})();
`;

function startWorker(calls: number, finish: boolean): { worker: Worker; next: () => Promise<{ what: string; settled?: number }> } {
  const worker = new Worker(WORKER, { eval: true, workerData: { addon: ADDON, calls, finish } });
  const messages: { what: string; settled?: number }[] = [];
  const waiting: ((m: { what: string; settled?: number }) => void)[] = [];
  worker.on('message', (m: { what: string; settled?: number }) => {
    const w = waiting.shift();
    if (w) w(m);
    else messages.push(m);
  });
  const next = (): Promise<{ what: string; settled?: number }> =>
    new Promise((resolve, reject) => {
      const m = messages.shift();
      if (m) return resolve(m);
      waiting.push(resolve);
      worker.once('error', reject);
    });
  return { worker, next };
}

describe('the addon in several environments (worker threads)', () => {
  test('six workers terminated with 2,000 calls each in flight; the main thread and a new worker still work', async () => {
    for (let i = 0; i < 6; i++) {
      const { worker, next } = startWorker(2000, false);
      assert.equal((await next()).what, 'started');
      await worker.terminate();
    }
    const conn = await libvirt.open('test:///default');
    const dom = await conn.lookupByName('test');
    const [state] = await dom.state();
    assert.equal(state, libvirt.VIR_DOMAIN_RUNNING);
    await conn.close();

    const { worker, next } = startWorker(500, true);
    assert.equal((await next()).what, 'started');
    const done = await next();
    assert.deepEqual(done, { what: 'done', settled: 500 });
    // Nothing is left to keep the worker's loop alive: parked call-queue threads and the shared
    // event loop do not, so it ends on its own with code 0.
    const code = await new Promise<number>((resolve) => worker.once('exit', resolve));
    assert.equal(code, 0);
  });

  test('workers terminated with calls on qemu:///system in flight leave no connection to libvirtd open', { skip: TEST_URI !== 'qemu:///system' && 'counts connections to the local libvirtd' }, async () => {
    const before = connectionsToLibvirtd();
    for (let i = 0; i < 3; i++) {
      const worker = new Worker(REMOTE_WORKER, { eval: true, workerData: { addon: ADDON } });
      await new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      await worker.terminate();
    }
    // The environment's cleanup hook abandons the calls not yet run and drops their references on
    // a thread of its own; the last one closes the connection.
    await waitFor(() => connectionsToLibvirtd() <= before, { timeoutMs: 10_000, what: 'the workers\' connections to close' });
  });
});

// Opens qemu:///system and fires 500 calls without awaiting them, then says so.
const REMOTE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const libvirt = require(workerData.addon);
(async () => {
  const conn = await libvirt.open('qemu:///system');
  for (let i = 0; i < 500; i++) conn.getLibVersion().catch(() => {});
  parentPort.postMessage('started');
})();
`;

/** This process's UNIX-socket connections whose other end libvirtd holds (from `ss -xpn`). */
function connectionsToLibvirtd(): number {
  const lines = execFileSync('ss', ['-xpn'], { encoding: 'utf8' }).split('\n').map((l) => l.trim().split(/\s+/));
  const mine = new Set(lines.filter((f) => f.join(' ').includes(`pid=${process.pid},`)).map((f) => f[5]));
  return lines.filter((f) => f.join(' ').includes('"libvirtd"') && mine.has(f[7])).length;
}
