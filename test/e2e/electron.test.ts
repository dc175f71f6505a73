// The desktop shell end to end: Playwright launches the built app in Electron. Electron's binary
// cannot be downloaded on every machine; where it is absent this test says SKIPPED and why.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { _electron as electron } from 'playwright-core';
import { electronBinary, repoRoot } from '../../scripts/electron-binary.mjs';

const binary = electronBinary();

test('the desktop app opens on a URI and lists its domains', { timeout: 60_000 }, async (t) => {
  if (!binary) {
    const why = 'no Electron binary on this machine (node_modules/electron/dist missing, ELECTRON_OVERRIDE_DIST_PATH unset)';
    console.log(`SKIPPED: Electron end-to-end test: ${why}`);
    t.skip(`SKIPPED: ${why}`);
    return;
  }
  const rootFlags = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  // A data folder (and Chromium profile) of its own, never the user's.
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-electron-data-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const app = await electron.launch({
    executablePath: binary,
    args: [...rootFlags, repoRoot, '--uri', 'test:///default'],
    env: { ...process.env, ELECTRON_ENABLE_LOGGING: '1', STRATA_DATA_DIR: dataDir },
    cwd: repoRoot,
  });
  try {
    const page = await app.firstWindow();
    page.on('pageerror', (e) => console.error('page error:', e));
    assert.equal(await page.title(), 'Strata');
    await page.getByRole('list', { name: 'Domains' }).getByRole('button', { name: /test/ }).waitFor({ timeout: 20_000 });
    assert.equal(await page.evaluate(() => typeof (globalThis as { strata?: unknown }).strata), 'object');
  } finally {
    await app.close();
  }
});
