// The walking skeleton's whole story in a real browser: `npm run serve` against the real
// libvirtd, Debian's Chromium driven by Playwright, a lab domain on a 3-layer qcow2 chain.
// What the page shows is checked against libvirt itself with virsh.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import {
  createTestLab,
  diskChain,
  libvirt,
  sweepStaleLabDomains,
  TEST_URI,
  virsh,
  virshBlockJobInfo,
  waitFor,
  type Connection,
  type TestLab,
} from '../lab/harness.ts';
import { launchBrowser, serve, stopServing, type Served } from './fixture.ts';

const MiB = 1024 * 1024;

describe('walking skeleton in Chromium against npm run serve', { timeout: 240_000 }, () => {
  let conn: Connection;
  let lab: TestLab;
  let server: Served | undefined;
  let browser: Browser;
  let page: Page;
  let label: string;
  const pageErrors: string[] = [];

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
    lab = await createTestLab(conn, { tag: 'e2e' });
    label = `${lab.name}/vda`;
    server = await serve();
    browser = await launchBrowser();
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  });

  after(async () => {
    await browser?.close();
    await stopServing(server);
    await lab?.dispose();
    await conn?.close();
  });

  it('refuses requests without the token', async () => {
    const base = new URL(server!.url);
    const res = await fetch(`${base.origin}/`);
    assert.equal(res.status, 403);
  });

  it('lists the lab domain and shows its chain, active layer first', async () => {
    await page.goto(server!.url);
    await page.getByRole('list', { name: 'Domains' }).getByRole('button', { name: new RegExp(lab.name) }).click();
    const chain = page.getByRole('list', { name: `Backing chain of ${label}` });
    await chain.waitFor();
    const items = chain.getByRole('listitem');
    assert.equal(await items.count(), 3);
    const [base, mid, active] = lab.layers;
    assert.match((await items.nth(0).textContent()) ?? '', new RegExp(escape(active!)));
    assert.match((await items.nth(1).textContent()) ?? '', new RegExp(escape(mid!)));
    assert.match((await items.nth(2).textContent()) ?? '', new RegExp(escape(base!)));
    assert.match((await items.nth(0).textContent()) ?? '', /qcow2/);
  });

  it('starts a pull with a limit; the progress bar moves and virsh shows the limit', async () => {
    await page.getByRole('button', { name: `Pull… on ${label}` }).click();
    const limit = page.getByRole('dialog').getByRole('textbox', { name: /in MiB\/s/ });
    await limit.fill('1');
    await limit.press('Enter');
    await page.getByRole('dialog').getByRole('button', { name: 'Start pull' }).click();
    const bar = page.getByRole('progressbar', { name: `Pull on ${label}` });
    await bar.waitFor();
    const info = await virshBlockJobInfo(lab.name, 'vda');
    assert.equal(info['bandwidth'], String(1 * MiB), `virsh blockjob --info: ${JSON.stringify(info)}`);
    const first = Number(await waitFor(() => bar.getAttribute('aria-valuenow'), { timeoutMs: 20_000, what: 'a known progress' }));
    await waitFor(async () => Number(await bar.getAttribute('aria-valuenow')) > first, { timeoutMs: 30_000, what: 'the bar to move' });
  });

  it('changes the running job’s limit from the slider at once', async () => {
    const typed = page.getByRole('textbox', { name: `Bandwidth limit for ${label}, in MiB/s (empty for no limit)` });
    await typed.fill('3');
    await typed.press('Enter');
    await waitFor(async () => (await virshBlockJobInfo(lab.name, 'vda'))['bandwidth'] === String(3 * MiB), {
      timeoutMs: 5_000,
      what: 'virsh blockjob --info to show 3 MiB/s',
    });
  });

  it('aborts the pull; libvirt has no job and the chain is intact', async () => {
    await page.getByRole('button', { name: `Abort pull on ${label}` }).click();
    await page.getByRole('button', { name: 'Yes, abort' }).click();
    await page.getByRole('progressbar', { name: `Pull on ${label}` }).waitFor({ state: 'detached', timeout: 15_000 });
    assert.deepEqual(await virshBlockJobInfo(lab.name, 'vda'), {});
    assert.equal(diskChain(await virsh(['dumpxml', lab.name]), 'vda').length, 3);
    assert.equal(await page.getByRole('list', { name: `Backing chain of ${label}` }).getByRole('listitem').count(), 3);
  });

  it('pulls without a limit; on completion the chain collapses to one layer without a reload', async () => {
    await page.getByRole('button', { name: `Pull… on ${label}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Start pull' }).click();
    const items = page.getByRole('list', { name: `Backing chain of ${label}` }).getByRole('listitem');
    await waitFor(async () => (await items.count()) === 1, { timeoutMs: 60_000, what: 'the chain to collapse on screen' });
    assert.match((await items.nth(0).textContent()) ?? '', new RegExp(escape(lab.layers[2]!)));
    assert.deepEqual(diskChain(await virsh(['dumpxml', lab.name]), 'vda'), [lab.layers[2]]);
    assert.deepEqual(pageErrors, []);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
