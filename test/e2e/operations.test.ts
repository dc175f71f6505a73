// Every operation planned, started and watched from the UI in Chromium against `npm run serve` and
// the real libvirtd; after each, libvirt's live XML (virsh) and the image files (qemu-img) must
// show what the preview promised. Screenshots of the main views are saved (see E2E.screenshot).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runTool } from '../../src/main/core/lab/images.ts';
import { labDomainXml } from '../../src/main/core/lab/lab-domain-xml.ts';
import { libvirt, sweepStaleLabDomains, uniqueLabName, virsh, virshBlockJobInfo, waitFor, type TestLab } from '../lab/harness.ts';
import type { Locator } from 'playwright-core';
import { E2E, imageChain, liveChain } from './fixture.ts';

describe('block jobs from the UI, checked with virsh and qemu-img', { timeout: 600_000 }, () => {
  const e2e = new E2E();
  const page = () => e2e.page;

  before(async () => {
    await sweepStaleLabDomains();
    await e2e.start();
  });

  after(() => e2e.stop());

  /** Opens a verb's dialog on the lab's vda. */
  async function plan(lab: TestLab, verb: 'Pull' | 'Commit' | 'Copy' | 'Snapshot') {
    await page().getByRole('button', { name: `${verb}… on ${lab.name}/vda`, exact: true }).click();
    const dialog = e2e.dialog();
    await dialog.waitFor();
    return dialog;
  }

  /** Picks, in a select of the dialog, the layer whose file is `file`. */
  async function chooseLayer(lab: TestLab, selectLabel: string, file: string) {
    const select = e2e.dialog().getByLabel(selectLabel);
    const value = await select.locator('option', { hasText: file }).getAttribute('value');
    assert.ok(value !== null, `no option for ${file} in ${selectLabel}`);
    await select.selectOption(value);
  }

  async function noJob(lab: TestLab) {
    await waitFor(async () => Object.keys(await virshBlockJobInfo(lab.name, 'vda')).length === 0, { timeoutMs: 20_000, what: `no job on ${lab.name}` });
  }

  it('pulls down to a base chosen from the chain', async () => {
    const lab = await e2e.lab('pullbase', { layers: 4 });
    const [base, l1, l2, active] = lab.layers as [string, string, string, string];
    await e2e.open(lab);
    await e2e.screenshot('domain-light');
    await page().emulateMedia({ colorScheme: 'dark' });
    await e2e.screenshot('domain-dark');
    await page().emulateMedia({ colorScheme: 'light' });
    const dialog = await plan(lab, 'Pull');
    await dialog.getByRole('radio', { name: new RegExp(basename(l1).replace('.', '\\.')) }).check();
    const preview = dialog.getByRole('list', { name: `Chain of ${lab.name}/vda afterwards` });
    await waitFor(async () => (await preview.getByRole('listitem').count()) === 3, { what: 'the preview of a 3-layer chain' });
    await dialog.getByRole('button', { name: 'Start pull' }).click();
    await dialog.waitFor({ state: 'detached' });
    await e2e.waitForLayers(lab, 3);
    await noJob(lab);
    assert.deepEqual(await liveChain(lab.name), [active, l1, base]);
    assert.deepEqual(await imageChain(active), [active, l1, base]);
    void l2;
  });

  it('commits a middle layer into the base once the drop is confirmed', async () => {
    const lab = await e2e.lab('commitmid');
    const [base, mid, active] = lab.layers as [string, string, string];
    await e2e.open(lab);
    const dialog = await plan(lab, 'Commit');
    await chooseLayer(lab, 'Top: the highest layer merged', basename(mid));
    await chooseLayer(lab, 'Base: the layer merged into', basename(base));
    const start = dialog.getByRole('button', { name: 'Start commit' });
    const confirm = dialog.getByRole('checkbox', { name: /leaves the chain/ });
    await confirm.waitFor();
    assert.equal(await start.isDisabled(), true, 'Start is disabled until the drop is confirmed');
    await e2e.screenshot('dialog-commit-preview');
    await confirm.check();
    await waitFor(() => start.isEnabled(), { what: 'Start to be enabled' });
    await start.click();
    await dialog.waitFor({ state: 'detached' });
    await e2e.waitForLayers(lab, 2);
    await noJob(lab);
    assert.deepEqual(await liveChain(lab.name), [active, base]);
    assert.deepEqual(await imageChain(active), [active, base]);
  });

  it('commits the active layer and pivots to the base', async () => {
    const lab = await e2e.lab('activecommit');
    const [base, mid, active] = lab.layers as [string, string, string];
    await e2e.open(lab);
    const dialog = await plan(lab, 'Commit');
    await chooseLayer(lab, 'Base: the layer merged into', basename(mid));
    await dialog.getByRole('radio', { name: /^Pivot/ }).check();
    await dialog.getByRole('checkbox', { name: /leaves the chain/ }).check();
    await dialog.getByRole('button', { name: 'Start commit' }).click();
    await dialog.waitFor({ state: 'detached' });
    await e2e.waitForLayers(lab, 2);
    await noJob(lab);
    assert.deepEqual(await liveChain(lab.name), [mid, base]);
    assert.deepEqual(await imageChain(mid), [mid, base]);
    void active;
  });

  it('copies the disk to a new image and pivots to it', async () => {
    const lab = await e2e.lab('copy');
    const destination = join(dirname(lab.layers[0]!), 'moved.qcow2');
    await e2e.open(lab);
    const dialog = await plan(lab, 'Copy');
    await dialog.getByLabel('Destination on the host').fill(destination);
    await dialog.getByRole('radio', { name: /^Pivot/ }).check();
    await dialog.getByRole('button', { name: 'Start copy' }).click();
    await dialog.waitFor({ state: 'detached' });
    await e2e.waitForLayers(lab, 1);
    await noJob(lab);
    assert.deepEqual(await liveChain(lab.name), [destination]);
    assert.deepEqual(await imageChain(destination), [destination]);
  });

  it('waits at ready after a copy, then pivots when told to', async () => {
    const lab = await e2e.lab('waitpivot');
    const destination = join(dirname(lab.layers[0]!), 'mirror.qcow2');
    const label = `${lab.name}/vda`;
    await e2e.open(lab);
    const dialog = await plan(lab, 'Copy');
    await dialog.getByLabel('Destination on the host').fill(destination);
    await dialog.getByRole('radio', { name: /^Wait for me/ }).check();
    await dialog.getByRole('button', { name: 'Start copy' }).click();
    await dialog.waitFor({ state: 'detached' });
    const pivot = page().getByRole('button', { name: `Pivot ${label} to the new image` });
    await waitFor(() => pivot.isEnabled(), { timeoutMs: 30_000, what: 'Pivot to be enabled at ready' });
    assert.equal(await page().getByRole('progressbar', { name: `Copy on ${label}` }).getAttribute('aria-valuetext'), 'ready to pivot');
    await page().getByRole('list', { name: 'Notices' }).getByText(`Copy on ${label} is ready to pivot`).waitFor();
    assert.equal((await liveChain(lab.name)).length, 3, 'nothing switched before the pivot');
    await pivot.click();
    await page().getByRole('group', { name: /switches vda to the new image/ }).waitFor();
    await page().getByRole('button', { name: 'Yes, pivot' }).click();
    await e2e.waitForLayers(lab, 1);
    await noJob(lab);
    assert.deepEqual(await liveChain(lab.name), [destination]);
    assert.deepEqual(await imageChain(destination), [destination]);
  });

  it('takes a snapshot at the proposed path', async () => {
    const lab = await e2e.lab('snapshot');
    const [base, mid, active] = lab.layers as [string, string, string];
    await e2e.open(lab);
    const dialog = await plan(lab, 'Snapshot');
    const field = dialog.getByLabel(/New layer's file/);
    const proposed = await waitFor(async () => (await field.inputValue()) || null, { what: 'a proposed path' });
    assert.equal(dirname(proposed), dirname(active));
    await dialog.getByRole('button', { name: 'Snapshot now' }).click();
    await dialog.waitFor({ state: 'detached' });
    await e2e.waitForLayers(lab, 4);
    assert.deepEqual(await liveChain(lab.name), [proposed, active, mid, base]);
    assert.deepEqual(await imageChain(proposed), [proposed, active, mid, base]);
  });

  it('changes nothing when a commit that needs confirming is cancelled', async () => {
    const lab = await e2e.lab('declined');
    const [base, mid, active] = lab.layers as [string, string, string];
    const before = await readFile(mid);
    await e2e.open(lab);
    const dialog = await plan(lab, 'Commit');
    await chooseLayer(lab, 'Top: the highest layer merged', basename(mid));
    await dialog.getByRole('checkbox', { name: /leaves the chain/ }).waitFor();
    // The layer the commit would drop is marked on the chain behind the dialog.
    assert.match((await e2e.chain(lab).getByRole('listitem').nth(1).textContent()) ?? '', /leaves the chain/);
    await page().keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await page().getByRole('button', { name: `Commit… on ${lab.name}/vda` }).evaluate((b) => b.matches(':focus')), true, 'focus returns to Commit…');
    assert.deepEqual(await virshBlockJobInfo(lab.name, 'vda'), {});
    assert.deepEqual(await liveChain(lab.name), [active, mid, base]);
    assert.deepEqual(await imageChain(active), [active, mid, base]);
    assert.ok(before.equals(await readFile(mid)), 'the middle layer is byte for byte the same');
    assert.doesNotMatch((await e2e.chain(lab).textContent()) ?? '', /leaves the chain/);
  });

  it('names another domain on the same base and needs that confirmed too', async () => {
    const lab = await e2e.lab('shared');
    const [base, mid] = lab.layers as [string, string, string];
    const sibling = uniqueLabName('sibling');
    const overlay = join(lab.dir, `${sibling}.qcow2`);
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay]);
    await e2e.conn.createXML(labDomainXml({ name: sibling, diskPath: overlay }), libvirt.VIR_DOMAIN_START_AUTODESTROY);
    try {
      // Strata learns of the sibling as a user does, by looking at it.
      await e2e.open({ ...lab, name: sibling });
      await e2e.open(lab);
      const dialog = await plan(lab, 'Commit');
      await chooseLayer(lab, 'Top: the highest layer merged', basename(mid));
      await chooseLayer(lab, 'Base: the layer merged into', basename(base));
      const shared = dialog.getByRole('checkbox', { name: new RegExp(`Other domains \\(${sibling}\\) use a layer this changes`) });
      await shared.waitFor();
      await dialog.getByText(/Other domains use a layer this changes/).waitFor();
      await dialog.getByRole('checkbox', { name: /leaves the chain/ }).check();
      const start = dialog.getByRole('button', { name: 'Start commit' });
      assert.equal(await start.isDisabled(), true, 'Start waits for the shared-layers confirmation');
      await shared.scrollIntoViewIfNeeded();
      await e2e.screenshot('dialog-shared-base');
      await shared.check();
      await waitFor(() => start.isEnabled(), { what: 'Start to be enabled' });
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'detached' });
      assert.deepEqual(await liveChain(lab.name), [...lab.layers].reverse());
      assert.deepEqual(await imageChain(overlay), [overlay, base]);
    } finally {
      await virsh(['destroy', sibling]).catch(() => undefined);
    }
  });

  it('shows a running job with its chart, then steers and aborts it', async () => {
    // Big enough that the pull outlives the test's steering, even at 10 MiB/s for a moment.
    const lab = await e2e.lab('running', { baseDataBytes: 48 * 1024 * 1024 });
    await e2e.open(lab);
    const dialog = await plan(lab, 'Pull');
    await dialog.getByRole('textbox', { name: /in MiB\/s/ }).fill('1');
    await dialog.getByRole('textbox', { name: /in MiB\/s/ }).press('Enter');
    await dialog.getByText(/takes at least/).waitFor();
    await dialog.getByRole('button', { name: 'Start pull' }).click();
    const label = `${lab.name}/vda`;
    const bar = page().getByRole('progressbar', { name: `Pull on ${label}` });
    await bar.waitFor();
    assert.equal((await virshBlockJobInfo(lab.name, 'vda'))['bandwidth'], String(1024 * 1024));
    // The README's pictures (STRATA_SCREENSHOT_DIR set) show a longer chart; a test run needs a few points.
    const points = process.env['STRATA_SCREENSHOT_DIR'] ? 10 : 4;
    await waitFor(async () => ((await page().locator('path.rate').getAttribute('d'))?.split('L').length ?? 0) >= points, { timeoutMs: 30_000, what: `${points} chart points` });
    await e2e.screenshot('job-running-light');
    await page().emulateMedia({ colorScheme: 'dark' });
    await e2e.screenshot('job-running-dark');
    await page().emulateMedia({ colorScheme: 'light' });
    const slider = page().getByRole('slider', { name: `Bandwidth limit for ${label}` });
    await slider.focus();
    await page().keyboard.press('ArrowRight');
    await page().keyboard.press('ArrowRight');
    await waitFor(async () => (await virshBlockJobInfo(lab.name, 'vda'))['bandwidth'] === String(3 * 1024 * 1024), { timeoutMs: 15_000, what: 'virsh to show 3 MiB/s' });
    assert.equal(await slider.getAttribute('aria-valuetext'), '3 MiB/s');
    // A drag up the slider and back sends a few setSpeed calls, not one per step, and the last
    // position wins (kept below 10 MiB/s, so the pull is still running at the end).
    const before = e2e.sent.filter((m) => m === 'job.setSpeed').length;
    const box = (await slider.boundingBox())!;
    const y = box.y + box.height / 2;
    await page().mouse.move(box.x + box.width * 0.1, y);
    await page().mouse.down();
    await page().mouse.move(box.x + box.width * 0.4, y, { steps: 30 });
    await page().mouse.move(box.x, y, { steps: 30 });
    await page().mouse.up();
    await waitFor(async () => (await virshBlockJobInfo(lab.name, 'vda'))['bandwidth'] === String(1024 * 1024), { timeoutMs: 15_000, what: 'virsh to show 1 MiB/s' });
    const calls = e2e.sent.filter((m) => m === 'job.setSpeed').length - before;
    // How many depends on how slowly the moves arrive (one call per round trip at most): 11 under
    // a loaded CI run, within 10 before. Half the moves still proves they were coalesced.
    assert.ok(calls >= 1 && calls <= 30, `a drag over 60 mouse moves sent ${calls} setSpeed calls`);
    assert.equal(await slider.getAttribute('aria-valuetext'), '1 MiB/s');
    await page().getByRole('button', { name: `Abort pull on ${label}` }).click();
    await page().getByRole('button', { name: 'Yes, abort' }).click();
    await bar.waitFor({ state: 'detached', timeout: 20_000 });
    await noJob(lab);
    assert.equal((await liveChain(lab.name)).length, 3);
  });

  it('pulls with the keyboard alone', async () => {
    const lab = await e2e.lab('keyboard');
    const [, , active] = lab.layers as [string, string, string];
    const p = page();
    /** Presses Tab until `target` has focus. */
    const tabTo = async (target: Locator, what: string) => {
      for (let i = 0; i < 200; i++) {
        if (await target.evaluate((el) => el.matches(':focus')).catch(() => false)) return;
        await p.keyboard.press('Tab');
      }
      assert.fail(`Tab never reached ${what}`);
    };
    await tabTo(p.getByRole('button', { name: 'Refresh', exact: true }), 'Refresh');
    await p.keyboard.press('Enter');
    await tabTo(p.getByRole('searchbox', { name: 'Filter domains' }), 'the filter');
    await p.keyboard.type(lab.name);
    await tabTo(p.getByRole('list', { name: /^Domains on / }).getByRole('button', { name: new RegExp(lab.name) }), 'the domain');
    await p.keyboard.press('Enter');
    await e2e.chain(lab).waitFor();
    await tabTo(p.getByRole('button', { name: `Pull… on ${lab.name}/vda` }), 'Pull…');
    await p.keyboard.press('Enter');
    const dialog = e2e.dialog();
    await dialog.waitFor();
    const start = dialog.getByRole('button', { name: 'Start pull' });
    await waitFor(() => start.isEnabled(), { what: 'the preview' });
    await tabTo(start, 'Start pull');
    await p.keyboard.press('Enter');
    await dialog.waitFor({ state: 'detached' });
    await e2e.waitForLayers(lab, 1);
    await noJob(lab);
    assert.deepEqual(await liveChain(lab.name), [active]);
    assert.deepEqual(await imageChain(active), [active]);
    // The ending is announced once, in the polite live region.
    await waitFor(async () => /^Pull on .*keyboard\/vda completed/.test((await p.locator('[aria-live="polite"][aria-atomic="true"]').textContent()) ?? ''), {
      what: 'the announcement',
    });
    await p.getByRole('searchbox', { name: 'Filter domains' }).fill('');
  });

  it('shows a refused start in the dialog, and changes nothing', async () => {
    const lab = await e2e.lab('refused');
    const taken = join(dirname(lab.layers[0]!), 'taken.qcow2');
    await writeFile(taken, 'not to be written over');
    await e2e.open(lab);
    const dialog = await plan(lab, 'Copy');
    await dialog.getByLabel('Destination on the host').fill(taken);
    await dialog.getByRole('button', { name: 'Start copy' }).click();
    const alert = dialog.getByRole('alert').filter({ hasText: /already exists/ });
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /reuse-existing-file|Choose a new path/);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await readFile(taken, 'utf8'), 'not to be written over');
    assert.deepEqual(await virshBlockJobInfo(lab.name, 'vda'), {});
    assert.equal((await liveChain(lab.name)).length, 3);
  });

  it('asks for system notifications on a click, then sends one when a job ends', async () => {
    const p = page();
    // Headless Chromium shows no notifications: a stand-in records what the page sends. It is
    // given as text, since tsx's helpers would not exist in the page.
    await p.addInitScript({
      content: `{
        const sent = [];
        class RecordedNotification {
          static permission = 'default';
          static requestPermission() {
            RecordedNotification.permission = 'granted';
            return Promise.resolve('granted');
          }
          constructor(title) {
            sent.push(title);
          }
        }
        Object.assign(globalThis, { Notification: RecordedNotification, sentNotifications: sent });
      }`,
    });
    await p.reload();
    const ask = p.getByRole('button', { name: 'Notify me when jobs end' });
    await ask.click();
    await ask.waitFor({ state: 'detached' });
    const lab = await e2e.lab('notify');
    await e2e.open(lab);
    const dialog = await plan(lab, 'Pull');
    await dialog.getByRole('button', { name: 'Start pull' }).click();
    await e2e.waitForLayers(lab, 1);
    await waitFor(
      async () => (await p.evaluate(() => (globalThis as { sentNotifications?: string[] }).sentNotifications ?? [])).some((t) => t.startsWith(`Pull on ${lab.name}/vda completed`)),
      { what: 'the system notification' },
    );
  });

  it('switches to the dark theme and keeps it across a reload', async () => {
    const p = page();
    const theme = p.getByRole('combobox', { name: 'Theme' });
    await theme.selectOption('dark');
    assert.equal(await p.locator('html').getAttribute('data-theme'), 'dark');
    await p.reload();
    await p.getByRole('combobox', { name: 'Theme' }).waitFor();
    assert.equal(await p.locator('html').getAttribute('data-theme'), 'dark');
    assert.equal(await p.getByRole('combobox', { name: 'Theme' }).inputValue(), 'dark');
    await p.getByRole('combobox', { name: 'Theme' }).selectOption('system');
    // Back to the system's theme, and following it.
    await p.emulateMedia({ colorScheme: 'light' });
    assert.equal(await p.locator('html').getAttribute('data-theme'), 'light');
    await p.emulateMedia({ colorScheme: 'dark' });
    await waitFor(async () => (await p.locator('html').getAttribute('data-theme')) === 'dark', { what: 'the page to follow the system to dark' });
    await p.emulateMedia({ colorScheme: 'light' });
  });

  it('lists the jobs in the history and exports it as JSON', async () => {
    const p = page();
    await p.getByRole('navigation', { name: 'Views' }).getByRole('button', { name: /^Jobs/ }).click();
    const rows = p.getByRole('table').getByRole('row');
    await waitFor(async () => (await rows.count()) >= 9, { what: 'the history rows', timeoutMs: 10_000 });
    // Toasts also leave by themselves, so one may be gone before its click.
    const dismiss = p.getByRole('button', { name: /^Dismiss: / });
    while ((await dismiss.count()) > 0) await dismiss.first().click({ timeout: 1000 }).catch(() => undefined);
    await p.getByRole('heading', { name: /^History/ }).scrollIntoViewIfNeeded();
    await e2e.screenshot('jobs-view');
    const [download] = await Promise.all([p.waitForEvent('download'), p.getByRole('button', { name: 'Export history as JSON' }).click()]);
    assert.match(download.suggestedFilename(), /^strata-history-.*\.json$/);
    const file = await download.path();
    const exported = JSON.parse(await readFile(file, 'utf8')) as { jobs: { type: string; phase: string }[] };
    const types = exported.jobs.map((j) => `${j.type}:${j.phase}`);
    for (const expected of ['pull:completed', 'commit:completed', 'active-commit:completed', 'copy:completed', 'pull:cancelled']) {
      assert.ok(types.includes(expected), `the export has ${expected}: ${types.join(', ')}`);
    }
    assert.deepEqual(e2e.pageErrors, []);
  });
});
