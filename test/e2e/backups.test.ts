// Backups from the window in Chromium against `npm run serve` and the real libvirtd: "Back up…"
// previews a full backup and starts it, the backup is a job on the disk's card until the set
// shows as restorable, and "Restore…" writes the point into a new file, equal byte for byte to
// the disk (compared after QEMU stopped). The restore dialog passes the axe audit in both themes;
// the panel with its set is saved as a screenshot (backups.png).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTraversable, runTool } from '../../src/main/core/lab/images.ts';
import { sweepStaleLabDomains, virsh, waitFor, type TestLab } from '../lab/harness.ts';
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
});
