// The window of a host that needs the user, in Chromium against `npm run serve`: the first screen
// names the problem by kind with the command to copy and Retry, passes axe-core's WCAG 2.1 AA
// rules in both themes, and turns to the host connected when the daemon's socket appears (a link
// to the real one), without a click.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { repoRoot } from '../../scripts/electron-binary.mjs';
import { defaultSocket, localUri } from '../../src/main/core/hosts/local-access.ts';
import { assertAccessibleInBothThemes } from '../e2e/axe.ts';
import { launchBrowser, serve, stopServing, type Served } from '../e2e/fixture.ts';
import { TEST_URI } from '../lab/harness.ts';

const instance = localUri(TEST_URI)?.instance ?? 'system';

describe('the window of a host that needs the user', { timeout: 180_000 }, () => {
  let dir = '';
  let socket = '';
  let served: Served | undefined;
  let browser: Browser | undefined;
  let page: Page;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-window-'));
    socket = join(dir, 'run', 'libvirt-sock');
    served = await serve(`qemu+unix:///${instance}?socket=${socket}`);
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(served.url);
  });
  after(async () => {
    await browser?.close();
    await stopServing(served);
    await rm(dir, { recursive: true, force: true });
  });

  it('shows the problem, its fixes and Retry on the first screen, accessibly, and connects when the socket appears', async () => {
    const panel = page.getByRole('main').getByRole('region', { name: /cannot be reached/ });
    await panel.waitFor();
    await panel.getByText("libvirt's daemon is not running").waitFor();
    assert.ok(await panel.getByText('sudo systemctl enable --now libvirtd', { exact: true }).isVisible());
    assert.ok(await panel.getByRole('button', { name: /^Retry/ }).isVisible());
    assert.match((await panel.textContent()) ?? '', /tries again by itself when .*libvirt-sock appears/);
    await assertAccessibleInBothThemes(page, 'a host that needs the user');
    await page.screenshot({ path: join(repoRoot, process.env['STRATA_SCREENSHOT_DIR'] ?? 'test-results/screenshots', 'host-needs-user.png') });

    await mkdir(join(dir, 'run'));
    await symlink(defaultSocket({ instance, socket: null }), socket);
    await page.getByRole('complementary').getByText('Connected', { exact: true }).waitFor({ timeout: 30_000 });
    assert.equal(await panel.count(), 0, 'the problem is gone from the first screen');
  });
});
