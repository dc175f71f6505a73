// libvirt's named snapshots, revert and grow from the window in Chromium against `npm run serve`
// and the real libvirtd, on persistent (defined) domains: a snapshot given a name in the
// Snapshot… dialog is shown on its layer and listed by `virsh snapshot-list`; "Revert to this
// layer…" on a shut-off domain previews what it discards, asks, and switches the definition to
// the older layer; "Grow…" grows a running disk. Each new dialog passes the axe audit in both
// themes; the named snapshot on its chain is saved as a screenshot (named-snapshot.png).
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runTool } from '../../src/main/core/lab/images.ts';
import { waitFor } from '../lab/harness.ts';
import { MiB, sweepStaleDefinedDomains, useDefinedDomain, useLabDir, virsh } from '../offline/offline-harness.ts';
import { assertAccessibleInBothThemes } from './axe.ts';
import { E2E } from './fixture.ts';

const snapshotNames = async (domain: string): Promise<string[]> =>
  (await virsh(['snapshot-list', '--name', domain]))
    .split('\n')
    .map((n) => n.trim())
    .filter(Boolean);

async function image(path: string, backing: string | null, pattern: number): Promise<string> {
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', ...(backing ? ['-b', backing, '-F', 'qcow2'] : []), path, String(64 * MiB)]);
  await runTool('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x${pattern.toString(16)} 1M 64k`, path]);
  return path;
}

describe('named snapshots, revert and grow from the window', { timeout: 600_000 }, () => {
  const e2e = new E2E();
  const page = () => e2e.page;
  const patience = 90_000;

  before(async () => {
    await sweepStaleDefinedDomains();
    await e2e.start();
    await page().emulateMedia({ reducedMotion: 'reduce' });
    page().setDefaultTimeout(patience);
  });

  after(() => e2e.stop());

  async function open(name: string, layers: number) {
    await page().getByRole('button', { name: 'Refresh', exact: true }).click();
    await page().getByRole('list', { name: /^Domains on / }).getByRole('button', { name: new RegExp(name) }).click();
    const chain = page().getByRole('list', { name: `Backing chain of ${name}/vda`, exact: true });
    await waitFor(async () => (await chain.getByRole('listitem').count()) === layers, { timeoutMs: patience, what: `${layers} layers of ${name}` });
    return chain;
  }

  it('a snapshot named in the dialog is on its layer and in virsh snapshot-list; Grow… grows the running disk', async (ctx) => {
    const dir = await useLabDir(ctx, 'e2e-named');
    const base = await image(join(dir, 'base.qcow2'), null, 0xa0);
    await runTool('qemu-img', ['snapshot', '-c', 'fresh-install', base]);
    const active = await image(join(dir, 'system.qcow2'), base, 0x5a);
    const name = await useDefinedDomain(ctx, dir, active, 'e2e-named');
    await virsh(['start', name]);
    await open(name, 2);

    await page().getByRole('button', { name: `Snapshot… on ${name}/vda`, exact: true }).click();
    const dialog = e2e.dialog();
    await dialog.getByLabel(/^Name \(optional/).fill('before-upgrade');
    await dialog.getByLabel(/^Description/).fill('Kernel 6.1 before the move to 6.6');
    await waitFor(() => dialog.getByRole('button', { name: 'Snapshot now' }).isEnabled(), { timeoutMs: patience, what: 'the preview of the snapshot' });
    await assertAccessibleInBothThemes(page(), 'the snapshot dialog with a name');
    await dialog.getByRole('button', { name: 'Snapshot now' }).click();
    await dialog.waitFor({ state: 'detached' });
    const chain = await open(name, 3);
    await chain.getByRole('listitem').first().getByText('before-upgrade', { exact: true }).waitFor();
    await chain.getByText('Kernel 6.1 before the move to 6.6', { exact: false }).waitFor();
    await chain.getByRole('listitem').last().getByText('fresh-install', { exact: true }).waitFor();
    assert.deepEqual(await snapshotNames(name), ['before-upgrade']);
    await assertAccessibleInBothThemes(page(), 'a named snapshot on its layer');
    await e2e.screenshot('named-snapshot');

    // Grow… from the keyboard: the dialog opens on its field, Enter grows, the next step is said.
    const grow = page().getByRole('button', { name: `Grow… ${name}/vda`, exact: true });
    await grow.focus();
    await page().keyboard.press('Enter');
    await dialog.waitFor();
    await page().keyboard.type('96');
    await dialog.getByLabel('Unit').selectOption('MiB');
    await assertAccessibleInBothThemes(page(), 'the grow dialog');
    await dialog.getByRole('button', { name: 'Grow', exact: true }).click();
    await dialog.getByText(/grow them inside the guest/).waitFor();
    assert.match(await virsh(['domblkinfo', name, 'vda']), new RegExp(`Capacity:\\s+${96 * MiB}`));
    await dialog.getByRole('button', { name: 'Close', exact: true }).last().click();
    await dialog.waitFor({ state: 'detached' });
    await virsh(['destroy', name]);
  });

  it('Revert to this layer… on a shut-off domain: previewed, confirmed, the definition on the older layer', async (ctx) => {
    const dir = await useLabDir(ctx, 'e2e-revert');
    const base = await image(join(dir, 'base.qcow2'), null, 0xa0);
    const older = await image(join(dir, 'older.qcow2'), base, 0x5a);
    const name = await useDefinedDomain(ctx, dir, older, 'e2e-revert');
    const newer = join(dir, 'newer.qcow2');
    await virsh(['snapshot-create-as', name, 'risky-change', 'before trying a new driver', '--disk-only', '--diskspec', `vda,file=${newer}`]);
    const chain = await open(name, 3);
    await chain.getByRole('listitem').first().getByText('risky-change', { exact: true }).waitFor();

    // From the keyboard: Enter opens it, focus stays inside while tabbing, Escape closes it and
    // focus goes back to the button; then it is opened again to revert.
    const opener = chain.getByRole('button', { name: `Revert to this layer… ${older}`, exact: true });
    await opener.focus();
    await page().keyboard.press('Enter');
    const dialog = e2e.dialog();
    await dialog.waitFor();
    // Tab may pass through the browser's own controls, never the page behind.
    for (let i = 0; i < 12; i++) {
      const where = await dialog.evaluate((d) => {
        const active = d.ownerDocument.activeElement;
        return active === null || active === d.ownerDocument.body ? 'nowhere' : d.contains(active) ? 'inside' : 'behind';
      });
      if (i === 0) assert.equal(where, 'inside', 'focus starts inside the revert dialog');
      else assert.notEqual(where, 'behind', `focus after ${i} Tab presses`);
      await page().keyboard.press('Tab');
    }
    await page().keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await opener.evaluate((b) => b.matches(':focus')), true, 'focus returns to the revert button');
    await opener.click();
    await dialog.getByText(`Make ${older} the active layer of vda`, { exact: false }).waitFor();
    await dialog.getByText(/risky-change/).first().waitFor();
    const revert = dialog.getByRole('button', { name: 'Revert', exact: true });
    assert.equal(await revert.isEnabled(), false, 'Revert waits for the confirmation');
    await assertAccessibleInBothThemes(page(), 'the revert dialog');
    await dialog.getByRole('checkbox', { name: new RegExp(`Discard what the layer above ${basename(older).replace('.', '\\.')}`) }).check();
    await revert.click();
    await dialog.waitFor({ state: 'detached' });
    await open(name, 2);
    assert.match(await virsh(['dumpxml', '--inactive', name]), new RegExp(`<source file='${older}'/>`));
    assert.deepEqual(await snapshotNames(name), []);
  });
});
