// The attacks the Host and Origin checks are for, made by a real browser (Debian's Chromium, as the
// e2e tests use): a foreign name resolved to 127.0.0.1 (DNS rebinding), and a page of another
// origin on the same machine opening the WebSocket while the browser holds Strata's cookie.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startHeadlessServer, type HeadlessServer } from '../../src/main/server/http-server.ts';
import { startTestCore, type TestCore } from '../core/core-harness.ts';

const chromiumPath = process.env['STRATA_CHROMIUM'] ?? '/usr/bin/chromium';

describe('headless server against a real browser’s attacks', { skip: existsSync(chromiumPath) ? false : `no Chromium at ${chromiumPath}`, timeout: 120_000 }, () => {
  let t: TestCore;
  let server: HeadlessServer;
  let foreign: Server;
  let foreignPort: number;
  let staticDir: string;
  let browser: Browser;
  let page: Page;

  before(async () => {
    t = await startTestCore({ uri: 'test:///default' });
    staticDir = await mkdtemp(join(tmpdir(), 'strata-static-'));
    await writeFile(join(staticDir, 'index.html'), '<!doctype html><title>Strata</title>');
    server = await startHeadlessServer(t.core, { port: 0, staticDir });
    // Another site on this machine: same host name, another port, so another origin but the same
    // site, to which the browser sends even a SameSite=Strict cookie.
    foreign = createServer((_req, res) => res.end('<!doctype html><title>elsewhere</title>'));
    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
    foreignPort = (foreign.address() as AddressInfo).port;
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--host-resolver-rules=MAP rebind.example 127.0.0.1'],
    });
    page = await browser.newPage();
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => foreign?.close(resolve));
    await server?.close();
    await t?.close();
    await rm(staticDir, { recursive: true, force: true });
  });

  /** Whether a WebSocket to `url`, opened by the page now shown, opens. */
  const socketOpens = (url: string): Promise<boolean> =>
    page.evaluate(
      (u) =>
        new Promise<boolean>((resolve) => {
          const ws = new WebSocket(u);
          ws.onopen = () => {
            ws.close();
            resolve(true);
          };
          ws.onerror = () => resolve(false);
        }),
      url,
    );

  it('its own page loads, and opens the WebSocket with the cookie alone', async () => {
    const response = await page.goto(server.url);
    assert.equal(response?.status(), 200);
    assert.equal(await socketOpens(`ws://127.0.0.1:${server.port}/ws`), true);
  });

  it('a foreign page on this machine cannot open it, though the browser sends the cookie', async () => {
    await page.goto(`http://127.0.0.1:${foreignPort}/`);
    assert.equal(await socketOpens(`ws://127.0.0.1:${server.port}/ws`), false);
    assert.equal(await socketOpens(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`), false, 'not even with the token');
  });

  it('a rebound name gets 403 for the page and the WebSocket, even with the token', async () => {
    const response = await page.goto(`http://rebind.example:${server.port}/?token=${server.token}`);
    assert.equal(response?.status(), 403);
    assert.match((await response?.text()) ?? '', /is not this server/);
    assert.equal(await socketOpens(`ws://rebind.example:${server.port}/ws?token=${server.token}`), false);
  });
});
