// The window's main states, each audited with axe-core's WCAG 2.1 A and AA rules in the light and
// the dark theme (see axe.ts), in Chromium against `npm run serve` and the real libvirtd: a
// domain's chains and a check of one, the four operation dialogs with their previews, the grow dialog, adding a
// host and its limits, a running job with its chart and slider, the question before an abort,
// the jobs view with running jobs and history, and a guest paused on an I/O error with its
// banner. Every dialog is also opened, tabbed through and closed from the keyboard alone, and so
// is the banner's Resume reached. A state added to the window gets one line here.
import assert from 'node:assert/strict';
import { basename, dirname, join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { sweepStaleLabDomains, virsh, virshBlockJobInfo, waitFor, type TestLab } from '../lab/harness.ts';
import { makeChain, useDefinedDomain, useLabDir } from '../offline/offline-harness.ts';
import { pausedGuestMissing, startPausedGuest } from './a11y-paused-guest.ts';
import { assertAccessibleInBothThemes } from './axe.ts';
import { E2E, MiB } from './fixture.ts';

describe('the window passes axe-core’s WCAG 2.1 A and AA rules', { timeout: 600_000 }, () => {
  const e2e = new E2E();
  const page = () => e2e.page;
  const patience = 90_000;
  let lab: TestLab;

  before(async () => {
    await sweepStaleLabDomains();
    await e2e.start();
    // Transitions end at once, so no colour is measured half-way through one.
    await page().emulateMedia({ reducedMotion: 'reduce' });
    // An audit of a busy page takes seconds, and far longer on a loaded machine; so may a click.
    page().setDefaultTimeout(patience);
    // Enough data that a pull at a quarter of a MiB/s outlives the audits of the running job.
    lab = await e2e.lab('a11y', { virtualSize: 256 * MiB, baseDataBytes: 128 * MiB });
  });

  after(() => e2e.stop());

  // A failed audit leaves its dialog open; the next state starts from the window without it.
  afterEach(async () => {
    if ((await e2e.dialog().count()) === 0) return;
    await page().keyboard.press('Escape');
    await e2e.dialog().waitFor({ state: 'detached' });
  });

  async function plan(verb: 'Pull' | 'Commit' | 'Copy' | 'Snapshot') {
    await page().getByRole('button', { name: `${verb}… on ${lab.name}/vda`, exact: true }).click();
    const dialog = e2e.dialog();
    await dialog.waitFor();
    return dialog;
  }

  async function close() {
    await e2e.dialog().getByRole('button', { name: 'Cancel' }).click();
    await e2e.dialog().waitFor({ state: 'detached' });
  }

  it('the domain view', async () => {
    await e2e.open(lab);
    await assertAccessibleInBothThemes(page(), 'the domain view');
  });

  it('the pull dialog with its preview and the time it takes', async () => {
    const dialog = await plan('Pull');
    const limit = dialog.getByRole('textbox', { name: /in MiB\/s/ });
    await limit.fill('1');
    await limit.press('Enter');
    await dialog.getByText(/takes at least/).waitFor();
    await waitFor(() => dialog.getByRole('button', { name: 'Start pull' }).isEnabled(), { timeoutMs: patience, what: 'the preview of the pull' });
    await assertAccessibleInBothThemes(page(), 'the pull dialog');
    await close();
  });

  it('the commit dialog asking to confirm a dropped layer', async () => {
    const dialog = await plan('Commit');
    const top = dialog.getByLabel('Top: the highest layer merged');
    await top.selectOption((await top.locator('option', { hasText: basename(lab.layers[1]!) }).getAttribute('value'))!);
    await dialog.getByRole('checkbox', { name: /leaves the chain/ }).waitFor();
    await assertAccessibleInBothThemes(page(), 'the commit dialog');
    await close();
  });

  it('the copy dialog with a destination', async () => {
    const dialog = await plan('Copy');
    await dialog.getByLabel('Destination on the host').fill(join(dirname(lab.layers[0]!), 'a11y-copy.qcow2'));
    await dialog.getByRole('list', { name: `Chain of ${lab.name}/vda afterwards` }).waitFor();
    await waitFor(() => dialog.getByRole('button', { name: 'Start copy' }).isEnabled(), { timeoutMs: patience, what: 'the preview of the copy' });
    await assertAccessibleInBothThemes(page(), 'the copy dialog');
    await close();
  });

  it('the snapshot dialog with its proposed file', async () => {
    const dialog = await plan('Snapshot');
    const field = dialog.getByLabel(/New layer's file/);
    await waitFor(async () => (await field.inputValue()) || null, { timeoutMs: patience, what: 'a proposed path' });
    // The proposed path is previewed again before the button is enabled: audit the settled dialog.
    await waitFor(() => dialog.getByRole('button', { name: 'Snapshot now' }).isEnabled(), { timeoutMs: patience, what: 'the preview of the proposed path' });
    await assertAccessibleInBothThemes(page(), 'the snapshot dialog');
    await close();
  });

  it('the grow dialog with a size smaller than the disk, refused in the dialog', async () => {
    await page().getByRole('button', { name: `Grow… ${lab.name}/vda`, exact: true }).click();
    await e2e.dialog().getByRole('textbox', { name: 'New size' }).fill('0.1');
    await e2e.dialog().getByText(/give a larger size/).waitFor();
    await assertAccessibleInBothThemes(page(), 'the grow dialog');
    await close();
  });

  it('the backup dialog with its preview', async () => {
    await page().getByRole('button', { name: `Back up… ${lab.name}`, exact: true }).click();
    await waitFor(() => e2e.dialog().getByRole('button', { name: 'Start backup' }).isEnabled(), { timeoutMs: patience, what: 'the preview of the backup' });
    await assertAccessibleInBothThemes(page(), 'the backup dialog');
    await close();
  });

  it('a chain check with its findings, layer by layer', async () => {
    const label = `${lab.name}/vda`;
    await page().getByRole('button', { name: `Check chain of ${label}`, exact: true }).click();
    await page().getByRole('list', { name: `Chain check of ${label}, layer by layer`, exact: true }).waitFor();
    await assertAccessibleInBothThemes(page(), 'a chain check');
  });

  it('opens every dialog, tabs through it and closes it from the keyboard', async () => {
    const openers = [
      ...(['Pull', 'Commit', 'Copy', 'Snapshot'] as const).map((verb) => page().getByRole('button', { name: `${verb}… on ${lab.name}/vda`, exact: true })),
      page().getByRole('button', { name: `Grow… ${lab.name}/vda`, exact: true }),
      page().getByRole('button', { name: 'Add host…' }),
      page().getByRole('button', { name: /^Limits… of / }).first(),
    ];
    for (const opener of openers) {
      const name = (await opener.textContent())?.trim();
      await opener.focus();
      await page().keyboard.press('Enter');
      const dialog = e2e.dialog();
      await dialog.waitFor();
      // Focus starts inside; Tab may pass through the browser's own controls, never the page behind.
      for (let i = 0; i < 25; i++) {
        const where = await dialog.evaluate((d) => {
          const active = d.ownerDocument.activeElement;
          return active === null || active === d.ownerDocument.body ? 'nowhere' : d.contains(active) ? 'inside' : 'behind';
        });
        if (i === 0) assert.equal(where, 'inside', `focus starts inside the dialog of ${name}`);
        else assert.notEqual(where, 'behind', `focus after ${i} Tab presses in the dialog of ${name}`);
        await page().keyboard.press('Tab');
      }
      await page().keyboard.press('Escape');
      await dialog.waitFor({ state: 'detached' });
      assert.equal(await opener.evaluate((b) => b.matches(':focus')), true, `focus returns to ${name}`);
    }
  });

  it('the add-host dialog with a refused URI, and the limits dialog', async () => {
    await page().getByRole('button', { name: 'Add host…' }).click();
    await e2e.dialog().getByRole('textbox', { name: 'libvirt URI' }).fill('not a uri');
    await e2e.dialog().getByRole('button', { name: 'Add host' }).click();
    await e2e.dialog().getByRole('alert').waitFor();
    await assertAccessibleInBothThemes(page(), 'the add-host dialog with an error');
    await close();
    await page().getByRole('button', { name: /^Limits… of / }).first().click();
    await e2e.dialog().waitFor();
    await assertAccessibleInBothThemes(page(), 'the limits dialog');
    await close();
  });

  it('a running job with its chart and slider, and the question before an abort', async () => {
    const dialog = await plan('Pull');
    const limit = dialog.getByRole('textbox', { name: /in MiB\/s/ });
    await limit.fill('0.25');
    await limit.press('Enter');
    await dialog.getByRole('button', { name: 'Start pull' }).click();
    await dialog.waitFor({ state: 'detached' });
    const label = `${lab.name}/vda`;
    await page().getByRole('progressbar', { name: `Pull on ${label}` }).waitFor();
    await page().getByRole('slider', { name: `Bandwidth limit for ${label}` }).waitFor();
    await e2e.chain(lab).getByText('read', { exact: true }).first().waitFor();
    await waitFor(async () => ((await page().locator('path.rate').getAttribute('d'))?.split('L').length ?? 0) >= 3, { timeoutMs: patience, what: 'a few chart points' });
    await assertAccessibleInBothThemes(page(), 'a running pull');
    await page().getByRole('button', { name: `Abort pull on ${label}` }).click();
    await page().getByRole('button', { name: 'Yes, abort' }).waitFor();
    await assertAccessibleInBothThemes(page(), 'the question before an abort');
    await page().keyboard.press('Escape');
    await page().getByRole('button', { name: 'Yes, abort' }).waitFor({ state: 'detached' });
  });

  it('the jobs view, with a running job and then with the history', async () => {
    const label = `${lab.name}/vda`;
    await page().getByRole('navigation', { name: 'Views' }).getByRole('button', { name: /^Jobs/ }).click();
    await page().getByRole('heading', { name: /^Running/ }).waitFor();
    await page().getByRole('progressbar', { name: `Pull on ${label}` }).waitFor();
    await assertAccessibleInBothThemes(page(), 'the jobs view with a running pull');
    // Ended from outside (Abort was audited above): the page only has to show the history.
    await virsh(['blockjob', lab.name, 'vda', '--abort']);
    await waitFor(async () => Object.keys(await virshBlockJobInfo(lab.name, 'vda')).length === 0, { timeoutMs: patience, what: `no job on ${lab.name}` });
    await page().getByRole('progressbar', { name: `Pull on ${label}` }).waitFor({ state: 'detached' });
    await page().getByRole('table').getByRole('row').filter({ hasText: label }).first().waitFor();
    await assertAccessibleInBothThemes(page(), 'the jobs view with the history');
  });
  it('an offline job on a shut-off domain, running, with its slider', async (t) => {
    const dir = await useLabDir(t, 'a11y-offline');
    const chain = await makeChain(dir, { writes: [[[0, 64 * MiB]], [[0, MiB]]], virtualSize: 128 * MiB });
    const name = await useDefinedDomain(t, dir, chain.active, 'a11y');
    const label = `${name}/vda`;
    await page().getByRole('navigation', { name: 'Views' }).getByRole('button', { name: /^Hosts/ }).click();
    await page().getByRole('button', { name: 'Refresh', exact: true }).click();
    await page().getByRole('list', { name: /^Domains on / }).getByRole('button', { name: new RegExp(name) }).click();
    await page().getByRole('button', { name: `Pull… on ${label}`, exact: true }).click();
    const limit = e2e.dialog().getByRole('textbox', { name: /in MiB\/s/ });
    await limit.fill('0.25');
    await limit.press('Enter');
    await waitFor(() => e2e.dialog().getByRole('button', { name: 'Start pull' }).isEnabled(), { timeoutMs: patience, what: 'the preview of the offline pull' });
    await e2e.dialog().getByRole('button', { name: 'Start pull' }).click();
    await page().getByRole('progressbar', { name: `Pull on ${label}` }).waitFor();
    await page().getByText(/offline, through qemu-storage-daemon/).waitFor();
    await assertAccessibleInBothThemes(page(), 'a running offline pull');
    await page().getByRole('button', { name: `Abort pull on ${label}` }).click();
    await page().getByRole('button', { name: 'Yes, abort' }).click();
    await page().getByRole('progressbar', { name: `Pull on ${label}` }).waitFor({ state: 'detached' });
  });

  it('a guest paused on an I/O error, its banner reached and Resume pressed from the keyboard, refused while there is no room', { skip: pausedGuestMissing() ?? false }, async (t) => {
    const guest = await startPausedGuest(t, e2e.conn, 'a11y-paused');
    await waitFor(async () => /paused \(I\/O error\)/.test(await virsh(['domstate', guest.name, '--reason'])), { timeoutMs: patience, what: `QEMU to pause ${guest.name}` });
    await page().getByRole('navigation', { name: 'Views' }).getByRole('button', { name: /^Hosts/ }).click();
    await page().getByRole('button', { name: 'Refresh', exact: true }).click();
    const opener = page().getByRole('list', { name: /^Domains on / }).getByRole('button', { name: new RegExp(guest.name) });
    await opener.click();
    const banner = page().getByRole('status', { name: `${guest.name} is paused`, exact: true });
    await banner.getByText(/QEMU paused the guest: no space was left writing/).waitFor();
    await banner.getByText(/^Free at least /).waitFor();
    await e2e.screenshot('guest-paused');
    await assertAccessibleInBothThemes(page(), 'a guest paused on an I/O error');

    // Keyboard alone: from the domain's entry in the list, Tab reaches the banner's Resume.
    const resume = banner.getByRole('button', { name: `Resume ${guest.name}`, exact: true });
    await opener.focus();
    for (let i = 0; i < 40 && !(await resume.evaluate((b) => b.matches(':focus'))); i++) await page().keyboard.press('Tab');
    assert.equal(await resume.evaluate((b) => b.matches(':focus')), true, 'Tab reaches the Resume button of the banner');
    await page().keyboard.press('Enter');
    await banner.getByRole('alert').filter({ hasText: /Not resumed: only .* free on / }).waitFor();
    await assertAccessibleInBothThemes(page(), 'a paused guest whose Resume was refused');
    assert.match(await virsh(['domstate', guest.name]), /paused/);
  });
});
