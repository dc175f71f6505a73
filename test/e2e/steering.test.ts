// What is decided at ready, the host's queue, and a second host, from the UI in Chromium against
// `npm run serve` and the real libvirtd: an active commit that keeps its top, a copy aborted at
// ready (the source untouched, the copy left unused, then removed from the card), a job that waits for a host limit and
// starts when the first ends, a second job on a busy disk refused with its reason, and a host over
// libvirt's remote driver, each checked with virsh.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startRemoteForwarder } from '../lab/remote-forwarder.ts';
import { sweepStaleLabDomains, virshBlockJobInfo, waitFor, type TestLab } from '../lab/harness.ts';
import { E2E, imageChain, liveChain } from './fixture.ts';

describe('ready, the queue and a second host', { timeout: 300_000 }, () => {
  const e2e = new E2E();
  const page = () => e2e.page;

  before(async () => {
    await sweepStaleLabDomains();
    await e2e.start();
  });

  after(() => e2e.stop());

  async function plan(lab: TestLab, verb: 'Pull' | 'Commit' | 'Copy') {
    await page().getByRole('button', { name: `${verb}… on ${lab.name}/vda`, exact: true }).click();
    const dialog = e2e.dialog();
    await dialog.waitFor();
    return dialog;
  }

  async function noJob(lab: TestLab) {
    await waitFor(async () => Object.keys(await virshBlockJobInfo(lab.name, 'vda')).length === 0, { timeoutMs: 30_000, what: `no job on ${lab.name}` });
  }

  async function setMaxJobs(value: string) {
    await page().getByRole('button', { name: /^Limits… of / }).first().click();
    await e2e.dialog().getByRole('textbox', { name: /^Jobs running at once/ }).fill(value);
    await e2e.dialog().getByRole('button', { name: 'Save limits' }).click();
    await e2e.dialog().waitFor({ state: 'detached' });
  }

  it('commits the active layer down and keeps it on top', async () => {
    const lab = await e2e.lab('keep');
    const [base, mid, active] = lab.layers as [string, string, string];
    await e2e.open(lab);
    const dialog = await plan(lab, 'Commit');
    const select = dialog.getByLabel('Base: the layer merged into');
    await select.selectOption((await select.locator('option', { hasText: basename(mid) }).getAttribute('value'))!);
    await dialog.getByRole('radio', { name: /^Keep the current chain active/ }).check();
    // Keeping the top drops nothing: no confirmation stands between the user and Start.
    const start = dialog.getByRole('button', { name: 'Start commit' });
    await waitFor(() => start.isEnabled(), { what: 'Start to be enabled' });
    assert.equal(await dialog.getByRole('checkbox', { name: /leaves the chain/ }).count(), 0);
    await start.click();
    await dialog.waitFor({ state: 'detached' });
    await noJob(lab);
    // The disk's card tells how the job ended: completed, the chain kept (not cancelled).
    await page().getByText(/completed: the disk kept its current chain/).first().waitFor({ timeout: 30_000 });
    assert.deepEqual(await liveChain(lab.name), [active, mid, base], 'the chain is as it was');
    assert.deepEqual(await imageChain(active), [active, mid, base]);
  });

  it('aborts a copy at ready: the source chain is untouched, the copy is left unused, and removed once confirmed', async () => {
    const lab = await e2e.lab('abortready');
    const destination = join(dirname(lab.layers[0]!), 'abandoned.qcow2');
    const label = `${lab.name}/vda`;
    const chainBefore = await liveChain(lab.name);
    await e2e.open(lab);
    const dialog = await plan(lab, 'Copy');
    await dialog.getByLabel('Destination on the host').fill(destination);
    await dialog.getByRole('radio', { name: /^Wait for me/ }).check();
    await dialog.getByRole('button', { name: 'Start copy' }).click();
    await dialog.waitFor({ state: 'detached' });
    const pivot = page().getByRole('button', { name: `Pivot ${label} to the new image` });
    await waitFor(() => pivot.isEnabled(), { timeoutMs: 30_000, what: 'the copy to be ready' });
    await page().getByRole('button', { name: `Abort copy on ${label}` }).click();
    // What the abort does is said before it is done.
    await page().getByRole('group', { name: /the copy at its destination is left behind, unused/ }).waitFor();
    await page().getByRole('button', { name: 'Yes, abort' }).click();
    await noJob(lab);
    assert.deepEqual(await liveChain(lab.name), chainBefore, 'the disk stays on its chain');
    assert.deepEqual(await imageChain(chainBefore[0]!), chainBefore);
    assert.ok(existsSync(destination), 'the copy is left where it was made');
    assert.ok(!(await liveChain(lab.name)).includes(destination), 'and nothing uses it');

    // The disk's card offers to remove it, says what that deletes, and asks first.
    const card = page().getByRole('article', { name: `Disk ${label}` });
    await card.getByText(/is left on the host, and no disk took it on/).waitFor({ timeout: 20_000 });
    await card.getByRole('button', { name: 'Remove the copy…' }).click();
    await card.getByRole('group', { name: /^Delete \/.*\/abandoned\.qcow2 .*no domain/ }).waitFor();
    await card.scrollIntoViewIfNeeded();
    await e2e.screenshot('copy-leftover');
    assert.ok(existsSync(destination), 'asking deletes nothing');
    await card.getByRole('button', { name: 'Yes, delete the file' }).click();
    await card.getByText('Strata removed the copy').waitFor({ timeout: 20_000 });
    assert.ok(!existsSync(destination), 'the copy is gone');
    assert.deepEqual(await liveChain(lab.name), chainBefore, 'and the disk is as it was');
  });

  it('starts a job that waited for the host limit once the first one ends', async () => {
    const first = await e2e.lab('limit-first', { baseDataBytes: 24 * 1024 * 1024 });
    const second = await e2e.lab('limit-second');
    await setMaxJobs('1');
    try {
      await e2e.open(first);
      let dialog = await plan(first, 'Pull');
      await dialog.getByRole('textbox', { name: /in MiB\/s/ }).fill('1');
      await dialog.getByRole('textbox', { name: /in MiB\/s/ }).press('Enter');
      await dialog.getByRole('button', { name: 'Start pull' }).click();
      await page().getByRole('progressbar', { name: `Pull on ${first.name}/vda` }).waitFor();

      await e2e.open(second);
      dialog = await plan(second, 'Pull');
      assert.equal(await dialog.getByRole('radio', { name: 'Queue it' }).isChecked(), true);
      await dialog.getByRole('button', { name: 'Start pull' }).click();
      await dialog.waitFor({ state: 'detached' });
      await page().getByText('Queued, place 1').waitFor();
      assert.deepEqual(await virshBlockJobInfo(second.name, 'vda'), {}, 'libvirt has no job for it yet');

      await e2e.open(first);
      await page().getByRole('button', { name: `Abort pull on ${first.name}/vda` }).click();
      await page().getByRole('button', { name: 'Yes, abort' }).click();
      await noJob(first);
      // The queued pull starts by itself and runs to its end.
      await e2e.open(second);
      await e2e.waitForLayers(second, 1);
      await noJob(second);
      assert.deepEqual(await liveChain(second.name), [second.layers[2]]);
      assert.equal((await liveChain(first.name)).length, 3, 'the aborted pull changed nothing');
    } finally {
      await setMaxJobs('');
    }
  });

  it('refuses a second job on a busy disk, with its reason, when asked to refuse', async () => {
    const lab = await e2e.lab('busy', { baseDataBytes: 24 * 1024 * 1024 });
    const label = `${lab.name}/vda`;
    await e2e.open(lab);
    let dialog = await plan(lab, 'Pull');
    await dialog.getByRole('textbox', { name: /in MiB\/s/ }).fill('1');
    await dialog.getByRole('textbox', { name: /in MiB\/s/ }).press('Enter');
    await dialog.getByRole('button', { name: 'Start pull' }).click();
    await page().getByRole('progressbar', { name: `Pull on ${label}` }).waitFor();

    dialog = await plan(lab, 'Pull');
    await dialog.getByRole('radio', { name: 'Refuse' }).check();
    await dialog.getByRole('button', { name: 'Start pull' }).click();
    const alert = dialog.getByRole('alert').filter({ hasText: /already has a pull job running/ });
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /one block job at a time/);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal((await virshBlockJobInfo(lab.name, 'vda'))['bandwidth'], String(1024 * 1024), 'the first pull runs on as it was');

    await page().getByRole('button', { name: `Abort pull on ${label}` }).click();
    await page().getByRole('button', { name: 'Yes, abort' }).click();
    await noJob(lab);
    assert.equal((await liveChain(lab.name)).length, 3);
  });

  it('adds a host over libvirt’s remote driver and shows its domains', async () => {
    const forwarder = await startRemoteForwarder();
    const lab = await e2e.lab('remote');
    const label = 'Remote lab';
    try {
      await page().getByRole('button', { name: 'Add host…' }).click();
      const dialog = e2e.dialog();
      await dialog.getByRole('textbox', { name: 'libvirt URI' }).fill(forwarder.uri);
      await dialog.getByRole('textbox', { name: /^Label/ }).fill(label);
      await dialog.getByRole('button', { name: 'Add host' }).click();
      await dialog.waitFor({ state: 'detached' });
      await page().getByRole('button', { name: new RegExp(`^${label}\\s*, Connected$`) }).waitFor({ timeout: 30_000 });
      const domains = page().getByRole('list', { name: `Domains on ${label}` });
      await domains.getByRole('button', { name: new RegExp(lab.name) }).waitFor({ timeout: 30_000 });
      await domains.getByRole('button', { name: new RegExp(lab.name) }).click();
      await page().getByRole('list', { name: `Backing chain of ${lab.name}/vda`, exact: true }).waitFor();
      await page().getByText(`on ${label}`, { exact: true }).waitFor();
    } finally {
      // The forwarder is closed whatever the removal does: left open, it keeps the test process alive.
      try {
        await page().getByRole('button', { name: `Remove host ${label}` }).click();
        await page().getByRole('button', { name: 'Yes, remove' }).click();
        await page().getByRole('list', { name: `Domains on ${label}` }).waitFor({ state: 'detached' });
      } finally {
        await forwarder.close();
      }
    }
    assert.deepEqual(e2e.pageErrors, []);
  });
});
