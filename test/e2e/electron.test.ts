// The desktop shell end to end: Playwright launches the built app in Electron on a lab domain,
// with a data folder of its own, runs a pull from the window, and reads in the main process
// (STRATA_TEST_HOOKS=1, src/main/desktop/test-probe.ts) the taskbar progress the shell set and the
// notification it showed; then a second launch hands its --uri to the first. Electron's binary
// cannot be downloaded on every machine; where it is absent this test says SKIPPED and how to
// provide one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { _electron as electron, type ElectronApplication } from 'playwright-core';
import type { Job } from '../../src/shared/model.ts';
import type { ShellProbe } from '../../src/main/desktop/test-probe.ts';
import { electronBinary, repoRoot } from '../../scripts/electron-binary.mjs';
import { TEST_URI, useConnection, useLabDomain, waitFor } from '../lab/harness.ts';
import { liveChain, smallChain } from './fixture.ts';

const binary = electronBinary();
const display = process.env['DISPLAY'] || process.env['WAYLAND_DISPLAY'];

function probe(app: ElectronApplication): Promise<ShellProbe> {
  return app.evaluate(() => (globalThis as unknown as { __strataShellProbe: ShellProbe }).__strataShellProbe);
}

test('the desktop app: a lab domain, a pull, its notification and taskbar progress, a second launch', { timeout: 240_000 }, async (t) => {
  if (!binary || !display) {
    const why = !binary
      ? 'no Electron binary on this machine (node_modules/electron/dist has none); set ELECTRON_OVERRIDE_DIST_PATH to the folder of an unpacked Electron (the one holding its `electron` executable) to run it'
      : 'no display (DISPLAY and WAYLAND_DISPLAY are unset); run the tests under a desktop session or xvfb-run';
    console.log(`SKIPPED: Electron end-to-end test: ${why}`);
    t.skip(`SKIPPED: ${why}`);
    return;
  }
  const rootFlags = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  const conn = await useConnection(t);
  const lab = await useLabDomain(t, conn, { ...smallChain, tag: 'electron' });
  const label = `${lab.name}/vda`;
  // A data folder (and Chromium profile, and single-instance lock) of its own, never the user's.
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-electron-data-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const env = { ...process.env, ELECTRON_ENABLE_LOGGING: '1', STRATA_DATA_DIR: dataDir, STRATA_TEST_HOOKS: '1' };
  const app = await electron.launch({ executablePath: binary, args: [...rootFlags, repoRoot, '--uri', TEST_URI], env, cwd: repoRoot });
  let closed = false;
  t.after(async () => {
    if (!closed) await app.close();
  });
  const page = await app.firstWindow();
  page.on('pageerror', (e) => console.error('page error:', e));
  assert.equal(await page.title(), 'Strata');
  assert.deepEqual(
    await page.evaluate(() => {
      const s = (globalThis as { strata?: Record<string, unknown> }).strata;
      return { keys: Object.keys(s ?? {}).sort(), nativeNotifications: s?.['nativeNotifications'], require: typeof (globalThis as { require?: unknown }).require };
    }),
    { keys: ['nativeNotifications', 'onEvent', 'onShell', 'request'], nativeNotifications: true, require: 'undefined' },
    'one object with the typed API, and no Node in the page',
  );

  await page.getByRole('list', { name: /^Domains/ }).getByRole('button', { name: new RegExp(lab.name) }).click();
  await page.getByRole('list', { name: `Backing chain of ${label}` }).waitFor({ timeout: 30_000 });

  // A limit keeps the pull running long enough for the taskbar to show it part-way.
  await page.getByRole('button', { name: `Pull… on ${label}` }).click();
  const limit = page.getByRole('dialog').getByRole('textbox', { name: /in MiB\/s/ });
  await limit.fill('2');
  await limit.press('Enter');
  await page.getByRole('dialog').getByRole('button', { name: 'Start pull' }).click();

  const done = await waitFor(async () => (await probe(app)).notices.find((n) => n.domain === lab.name), { timeoutMs: 120_000, what: 'the notification of the pull' });
  assert.match(done.title, new RegExp(`^Pull on ${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} completed after `));
  assert.equal(done.urgency, 'normal');
  assert.deepEqual(await liveChain(lab.name), [lab.layers[2]], 'the pull left one layer');

  const progress = await waitFor(async () => {
    const p = (await probe(app)).progress;
    return p.at(-1) === -1 ? p : null;
  }, { what: 'the taskbar bar removed once nothing runs' });
  assert.ok(progress.some((v) => v > 0 && v < 1), `the bar showed the pull part-way: ${progress.join(', ')}`);
  for (const [i, v] of progress.entries()) assert.ok(v === -1 || v === 2 || (v >= 0 && v <= 1), `value ${i}: ${v}`);

  // A second launch on the same data folder hands its --uri over and quits.
  const second = spawn(binary, [...rootFlags, repoRoot, '--uri', 'test:///default'], { env, cwd: repoRoot, stdio: 'ignore' });
  const code = await new Promise<number | null>((resolve) => second.once('exit', resolve));
  assert.equal(code, 0, 'the second instance quits at once');
  const shown = await waitFor(async () => (await probe(app)).shellEvents.find((e) => e.kind === 'show-host'), { timeoutMs: 20_000, what: 'the hand-over' });
  const hosts = await page.evaluate(async () => {
    const reply = await (globalThis as unknown as { strata: { request(m: string, p: unknown): Promise<{ ok: boolean; result?: unknown }> } }).strata.request('hosts.list', {});
    return reply.result as { id: string; uri: string }[];
  });
  assert.deepEqual(
    hosts.filter((h) => h.uri === 'test:///default').map((h) => h.id),
    [shown.kind === 'show-host' ? shown.hostId : ''],
    'the URI was added once, and that host is the one shown',
  );
  const jobs = await page.evaluate(async () => {
    const reply = await (globalThis as unknown as { strata: { request(m: string, p: unknown): Promise<{ result?: unknown }> } }).strata.request('jobs.list', {});
    return reply.result as Job[];
  });
  assert.deepEqual(jobs.filter((j) => j.domain === lab.name), [], 'no job left running');

  // With no job running the window closes without asking, and its place is remembered.
  await app.close();
  closed = true;
  await access(join(dataDir, 'window-state.json'));
});
