// Backups from the window in Chromium against `npm run serve` and the real libvirtd: "Back up…"
// previews a full backup and starts it, the backup is a job on the disk's card until the set
// shows as restorable, and "Restore…" writes the point into a new file, equal byte for byte to
// the disk (compared after QEMU stopped). The restore dialog passes the axe audit in both themes;
// the panel with its set is saved as a screenshot (backups.png). A shut-off domain is restored
// into itself with the keyboard: a slow restore followed on its job card and aborted leaves
// no image and the definition as it was; the next one switches the disk and keeps the old chain
// (restore-into-domain.png shows the preview with the definition's changed lines).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTraversable, runTool } from '../../src/main/core/lab/images.ts';
import { definedSource } from '../../src/main/core/offline/domain-definition.ts';
import { sweepStaleLabDomains, virsh, waitFor, type TestLab } from '../lab/harness.ts';
import { assertSameData, makeChain, sweepStaleDefinedDomains, useDefinedDomain, useLabDir } from '../offline/offline-harness.ts';
import { assertAccessibleInBothThemes } from './axe.ts';
import { E2E, MiB } from './fixture.ts';

describe('backups from the window', { timeout: 600_000 }, () => {
  const e2e = new E2E();
  const page = () => e2e.page;
  const patience = 90_000;
  let folder: string;
  let lab: TestLab;

  before(async () => {
    await sweepStaleLabDomains();
    await sweepStaleDefinedDomains();
    folder = await mkdtemp(join(tmpdir(), 'strata-e2e-backups-'));
    await makeTraversable(folder);
    // The served Strata keeps its sets here, not in the machine's shared backup folder.
    process.env['STRATA_BACKUP_DIR'] = folder;
    await e2e.start();
    await page().emulateMedia({ reducedMotion: 'reduce' });
    page().setDefaultTimeout(patience);
    lab = await e2e.lab('backup', { virtualSize: 128 * MiB, baseDataBytes: 32 * MiB });
  });

  after(async () => {
    await e2e.stop();
    delete process.env['STRATA_BACKUP_DIR'];
    await rm(folder, { recursive: true, force: true });
  });

  it('backs up a running domain, shows the set, and restores it to a new file equal to the disk', async () => {
    await e2e.open(lab);
    const panel = page().getByRole('region', { name: 'Backups' });
    await panel.getByText(/No backup of/).waitFor();

    await page().getByRole('button', { name: `Back up… ${lab.name}`, exact: true }).click();
    const dialog = e2e.dialog();
    await dialog.getByText(/no earlier backup/).waitFor();
    await dialog.getByText(`${folder}/${lab.name} (a new set)`).waitFor();
    await waitFor(() => dialog.getByRole('button', { name: 'Start backup' }).isEnabled(), { timeoutMs: patience, what: 'the preview of the backup' });
    await dialog.getByRole('button', { name: 'Start backup' }).click();
    await dialog.waitFor({ state: 'detached' });

    // The backup is a job like the others: its end is told on the disk's card and in a notice.
    await page().getByText(`Backup on ${lab.name}/vda completed`).first().waitFor();
    const set = panel.getByRole('listitem', { name: /^Backup set / });
    await set.getByText('Restorable').waitFor();
    await set.getByText(/Full · .* · complete/).waitFor();
    await e2e.screenshot('backups');

    await set.getByRole('button', { name: /^Verify set / }).click();
    await set.getByText(/^Verified: every image passes qemu-img check/).waitFor();

    await set.getByRole('button', { name: /^Restore… from set / }).click();
    const restore = e2e.dialog();
    const destination = join(folder, 'restored.qcow2');
    await restore.getByLabel('New image file').fill(destination);
    await assertAccessibleInBothThemes(page(), 'the restore dialog');
    await restore.getByRole('button', { name: 'Restore', exact: true }).click();
    await restore.getByText(/^Restored/).waitFor();
    await page().keyboard.press('Escape');
    await restore.waitFor({ state: 'detached' });

    await virsh(['destroy', lab.name]);
    await runTool('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', destination, lab.layers[lab.layers.length - 1]!]);
  });

  it('restores into a shut-off domain with the keyboard: aborted on its job card, then switched with the old chain kept', async (t) => {
    const dir = await useLabDir(t, 'e2e-rs-into');
    const chain = await makeChain(dir, { writes: [[[0, 24 * MiB]], [[MiB, MiB]]] });
    const name = await useDefinedDomain(t, dir, chain.active, 'e2e-rs-into');
    const xmlBefore = await virsh(['dumpxml', '--inactive', name]);
    await page().getByRole('button', { name: 'Refresh', exact: true }).click();
    await page().getByRole('list', { name: /^Domains on / }).getByRole('button', { name: new RegExp(name) }).click();
    const panel = page().getByRole('region', { name: 'Backups' });
    await panel.getByText(/No backup of/).waitFor();
    await page().getByRole('button', { name: `Back up… ${name}`, exact: true }).click();
    let dialog = e2e.dialog();
    await waitFor(() => dialog.getByRole('button', { name: 'Start backup' }).isEnabled(), { timeoutMs: patience, what: 'the preview of the backup' });
    await dialog.getByRole('button', { name: 'Start backup' }).click();
    await dialog.waitFor({ state: 'detached' });
    const set = panel.getByRole('listitem', { name: /^Backup set / });
    await set.getByText('Restorable').waitFor();

    const openInto = async () => {
      await set.getByRole('button', { name: /^Restore… from set / }).click();
      const restore = e2e.dialog();
      // The keyboard picks the destination: the first radio, then the arrow to "Into …".
      await restore.getByRole('radio', { name: /^To a new file/ }).focus();
      await page().keyboard.press('ArrowDown');
      assert.equal(await restore.getByRole('radio', { name: new RegExp(`^Into ${name}`) }).isChecked(), true);
      await restore.getByLabel('Definition lines before and after').waitFor();
      return restore;
    };

    dialog = await openInto();
    await dialog.getByText(chain.active).first().waitFor();
    await e2e.screenshot('restore-into-domain');
    await assertAccessibleInBothThemes(page(), 'the restore dialog into a shut-off domain');
    await dialog.getByRole('checkbox', { name: /^Delete the old chain/ }).check();
    await dialog.getByRole('group', { name: 'Confirm the deletion' }).waitFor();
    await dialog.getByText('Confirm the deletion of the files listed, or keep the old chain.').waitFor();
    await assertAccessibleInBothThemes(page(), 'the restore dialog asking to confirm the deletion of the old chain');
    await dialog.getByRole('checkbox', { name: /^Delete the old chain/ }).uncheck();

    // Slow, so its job card shows in the dialog; aborted there.
    const typed = dialog.getByRole('textbox', { name: 'Bandwidth limit for the restore, in MiB/s (empty for no limit)' });
    await typed.fill('1');
    await typed.press('Enter');
    const submit = dialog.getByRole('button', { name: `Restore into ${name}`, exact: true });
    await waitFor(() => submit.isEnabled(), { timeoutMs: patience, what: 'the restore to be offered' });
    await submit.focus();
    await page().keyboard.press('Enter');
    const card = dialog.getByRole('progressbar');
    await card.waitFor();
    await assertAccessibleInBothThemes(page(), 'the restore dialog following its job');
    await dialog.getByRole('button', { name: /^Abort restore/ }).click();
    await dialog.getByRole('button', { name: 'Yes, abort' }).click();
    // Whichever end comes, so that a failure says which: aborted, refused, failed or completed.
    const outcome = dialog
      .getByRole('alert')
      .filter({ hasText: /^(The restore|Could not do that)/ })
      .or(dialog.getByRole('status').filter({ hasText: /^Restored/ }));
    await outcome.first().waitFor();
    assert.match(await outcome.first().innerText(), /^The restore was aborted/);
    await assertAccessibleInBothThemes(page(), 'the restore dialog after an abort');
    assert.equal(await virsh(['dumpxml', '--inactive', name]), xmlBefore);
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('restore')), [], 'no image and no partial file');
    await page().keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });

    dialog = await openInto();
    await dialog.getByRole('button', { name: `Restore into ${name}`, exact: true }).click();
    await dialog.getByRole('status').filter({ hasText: /^Restored into / }).waitFor();
    const restored = definedSource(await virsh(['dumpxml', '--inactive', name]), 'vda').path!;
    assert.notEqual(restored, chain.active);
    for (const layer of chain.layers) assert.ok(existsSync(layer), `${layer} is kept`);
    await assertSameData(chain, restored);
    await page().keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });
});
