// The addon beside a thread that owns GLib's default main context, as Electron's UI thread does
// on Linux. libvirt's default event implementation runs on that context, so there its callbacks
// wait for (or run on) the other thread, and a process that opened and closed a connection never
// exits. The addon's own loop (native/src/event_loop.cpp) touches no GLib context: calls, block-job
// events and keepalive work, and the process exits promptly after close.
//
// Without Electron: a child Node process with fixtures/glib-owner.c (built here) preloaded.
// STRATA_EVENT_IMPL from the environment reaches the first child as is, so
// `STRATA_EVENT_IMPL=default node --test ...` makes this file fail against libvirt's default
// implementation; the control test sets it by itself.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { sweepStaleLabDomains, TEST_URI } from '../lab/harness.ts';

const OWNER_SOURCE = fileURLToPath(new URL('./fixtures/glib-owner.c', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/glib-child.ts', import.meta.url));
const ADDON = fileURLToPath(new URL('../../native/index.js', import.meta.url));
/** Measured: the same child without the preloaded thread exits ~0.1 s after its last line. */
const EXIT_WITHIN_MS = 3000;

interface Outcome {
  lines: Record<string, unknown>[];
  /** From the child's "closed" line to its exit; null when it had to be killed. */
  exitMs: number | null;
  stderr: string;
}

function runChild(preload: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<Outcome> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env, LD_PRELOAD: preload }, stdio: 'pipe' });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  let closedAt: number | null = null;
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const parsed = JSON.parse(line) as Record<string, unknown>;
    if (parsed['what'] === 'closed') closedAt = Date.now();
    lines.push(parsed);
  });
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      const exitMs = signal === 'SIGKILL' || closedAt === null ? null : Date.now() - closedAt;
      if (code !== 0 && signal === null) stderr += `\n(exit code ${String(code)})`;
      resolve({ lines, exitMs, stderr });
    });
  });
}

describe('beside a thread that iterates GLib’s default main context', () => {
  let dir: string;
  let preload: string;
  before(async () => {
    await sweepStaleLabDomains();
    dir = mkdtempSync(join(tmpdir(), 'strata-glib-'));
    preload = join(dir, 'glib-owner.so');
    const cc = spawnSync('cc', ['-shared', '-fPIC', '-o', preload, OWNER_SOURCE, '-l:libglib-2.0.so.0', '-lpthread'], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `building the GLib helper: ${cc.stderr}`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('calls, block-job events and keepalive work, and the process exits promptly after close', async () => {
    const out = await runChild(preload, ['--import', 'tsx', CHILD, TEST_URI], {}, 90_000);
    const what = (w: string) => out.lines.find((l) => l['what'] === w);
    assert.deepEqual(what('glib-owner'), { what: 'glib-owner', found: true }, out.stderr);
    const jobs = what('jobs');
    assert.ok(jobs, `no block-job round finished: ${JSON.stringify(out.lines)} ${out.stderr}`);
    // Three throttled pulls, each cancelled: VIR_DOMAIN_BLOCK_JOB_CANCELED three times.
    assert.deepEqual(jobs['statuses'], [2, 2, 2]);
    assert.ok(Number(jobs['calls']) > 10, `calls made while the jobs ran: ${String(jobs['calls'])}`);
    if (TEST_URI === 'qemu:///system') {
      const keepalive = what('keepalive');
      // VIR_CONNECT_CLOSE_REASON_KEEPALIVE, within interval × (count + 1) plus slack.
      assert.deepEqual(keepalive?.['reasons'], [2], JSON.stringify(keepalive));
      assert.ok(Number(keepalive['ms']) < 5000, JSON.stringify(keepalive));
      assert.equal(keepalive['alive'], false);
    }
    assert.ok(what('closed'), `the child did not get to the end: ${JSON.stringify(out.lines)} ${out.stderr}`);
    assert.ok(out.exitMs !== null && out.exitMs < EXIT_WITHIN_MS, `exit ${String(out.exitMs)} ms after close; ${out.stderr}`);
  });

  test('control: with libvirt’s default implementation, opening and closing a connection never lets the process exit', async () => {
    const script = `const l = require(${JSON.stringify(ADDON)});
      (async () => { const c = await l.open('test:///default'); await c.close(); console.log('{"what":"closed"}'); })();`;
    const out = await runChild(preload, ['-e', script], { STRATA_EVENT_IMPL: 'default' }, 5000);
    assert.equal(out.exitMs, null, 'the preloaded thread did not hold the default implementation up: this file proves nothing');

    const ours = await runChild(preload, ['-e', script], { STRATA_EVENT_IMPL: '' }, 5000);
    assert.ok(ours.exitMs !== null && ours.exitMs < EXIT_WITHIN_MS, `exit ${String(ours.exitMs)} ms after close; ${ours.stderr}`);
  });
});
