// Backup settings from the window in Chromium against `npm run serve`: a domain's Backups panel
// lists the host's folder, the retention and the schedule in force; "Settings…" changes them. A
// folder inside Strata's data folder and a retention of 0 days come back as the server's errors
// in the dialog, which stays open; the corrected settings are listed after a reload and are what
// backups.json keeps. The dialog and the panel pass the axe audit in both themes; the filled
// dialog is saved as a screenshot (backup-settings.png). No backup runs: it takes seconds.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTraversable } from '../../src/main/core/lab/images.ts';
import { sweepStaleLabDomains, waitFor, type TestLab } from '../lab/harness.ts';
import { assertAccessibleInBothThemes } from './axe.ts';
import { E2E } from './fixture.ts';

describe('backup settings from the window', { timeout: 300_000 }, () => {
  const e2e = new E2E();
  const page = () => e2e.page;
  let folder: string;
  let chosen: string;
  let lab: TestLab;

  before(async () => {
    await sweepStaleLabDomains();
    folder = await mkdtemp(join(tmpdir(), 'strata-e2e-bset-default-'));
    chosen = await mkdtemp(join(tmpdir(), 'strata-e2e-bset-chosen-'));
    await makeTraversable(folder);
    // The served Strata's default folder: not the machine's shared one.
    process.env['STRATA_BACKUP_DIR'] = folder;
    await e2e.start();
    await page().emulateMedia({ reducedMotion: 'reduce' });
    page().setDefaultTimeout(60_000);
    lab = await e2e.lab('bset');
  });

  after(async () => {
    await e2e.stop();
    delete process.env['STRATA_BACKUP_DIR'];
    await rm(folder, { recursive: true, force: true });
    await rm(chosen, { recursive: true, force: true });
  });

  it('sets the folder, a retention and a schedule, shows the server’s errors, and lists them after a reload', async () => {
    await e2e.open(lab);
    const settings = () => page().getByRole('group', { name: `Backup settings of ${lab.name}` });
    await settings().getByText(`${folder}`, { exact: true }).waitFor();
    await settings().getByText(/\(the default\) · .* free · on this machine/).waitFor();
    await settings().getByText('the last 7 good sets (the default)').waitFor();
    await settings().getByText('none: backups run when you start them').waitFor();

    // Keyboard: the button opens the dialog with focus on its first field; Escape closes it and
    // gives focus back to the button.
    const open = page().getByRole('button', { name: `Settings… for the backups of ${lab.name}`, exact: true });
    await open.focus();
    await page().keyboard.press('Enter');
    const dialog = e2e.dialog();
    const folderField = dialog.getByLabel(/^Folder on this machine/);
    await waitFocused(folderField);
    await page().keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await waitFocused(open);

    await open.click();
    const save = dialog.getByRole('button', { name: 'Save settings' });
    assert.equal(await save.isDisabled(), true, 'Save is disabled while nothing changed');
    await dialog.getByText('Nothing changed yet.').waitFor();

    // The server refuses a folder inside its data folder, saying why and what to do.
    await folderField.fill(join(e2e.served.dataDir, 'mine'));
    await save.click();
    const alert = dialog.getByRole('alert');
    await alert.getByText(/Could not set the backup folder of .*: .* is inside Strata's data folder/).waitFor();
    await alert.getByText(/^Choose a folder outside it/).waitFor();
    await assertAccessibleInBothThemes(page(), 'the backup settings dialog with an error');

    // A good folder and a retention of 0 days: the folder is saved, the retention refused by the
    // contract, naming the field.
    await folderField.fill(chosen);
    await dialog.getByRole('checkbox', { name: 'Keep the good sets of the last' }).check();
    await dialog.getByRole('textbox', { name: 'Days to keep good sets' }).fill('0');
    await save.click();
    await alert.getByText(/Could not set the retention of/).waitFor();
    await alert.getByRole('listitem').filter({ hasText: 'keepDays is at least 1' }).waitFor();
    await dialog.getByText(new RegExp(`Now ${escape(chosen)} \\(chosen`)).waitFor();

    await dialog.getByRole('textbox', { name: 'Days to keep good sets' }).fill('30');
    await dialog.getByRole('textbox', { name: 'Good sets to keep' }).fill('3');
    await dialog.getByRole('radio', { name: 'Weekly' }).check();
    await dialog.getByRole('combobox', { name: /^Day of the week/ }).selectOption({ label: 'Monday' });
    await dialog.getByLabel(/^At \(/).fill('02:30');
    await dialog.getByRole('textbox', { name: 'Full backup every Nth run' }).fill('4');
    await dialog.getByRole('button', { name: 'Dismiss error' }).click();
    await e2e.screenshot('backup-settings');
    await assertAccessibleInBothThemes(page(), 'the filled backup settings dialog');
    await save.click();
    await dialog.waitFor({ state: 'detached' });

    const listed = async (): Promise<void> => {
      await settings().getByText(chosen, { exact: true }).waitFor();
      await settings().getByText(/\(chosen\) · .* free · on this machine/).waitFor();
      await settings().getByText(/^the last 3 good sets, and older ones while they are from the last 30 days/).waitFor();
      await settings().getByText('Weekly on Monday at 02:30, a full backup every 4th run, incremental otherwise').waitFor();
      await settings().getByText(/^· next .* \(full\) · no run yet$/).waitFor();
    };
    await listed();
    await e2e.screenshot('backup-settings-panel');
    await assertAccessibleInBothThemes(page(), 'the Backups panel with its settings');

    await page().reload();
    await e2e.open(lab);
    await listed();

    // What the server keeps, by the host's URI.
    const kept = JSON.parse(await readFile(join(e2e.served.dataDir, 'backups.json'), 'utf8')) as {
      locations: { path: string }[];
      retention: { domain: string; keepSets: number | null; keepDays: number | null }[];
      schedules: { domain: string; every: string; at: string; weekday: number; fullEvery: number; runs: number }[];
    };
    assert.deepEqual(kept.locations.map((l) => l.path), [chosen]);
    assert.deepEqual(kept.retention.map(({ domain, keepSets, keepDays }) => ({ domain, keepSets, keepDays })), [{ domain: lab.name, keepSets: 3, keepDays: 30 }]);
    assert.deepEqual(
      kept.schedules.map(({ domain, every, at, weekday, fullEvery, runs }) => ({ domain, every, at, weekday, fullEvery, runs })),
      [{ domain: lab.name, every: 'week', at: '02:30', weekday: 1, fullEvery: 4, runs: 0 }],
    );
    assert.deepEqual(e2e.pageErrors, []);
  });

  function waitFocused(locator: ReturnType<E2E['dialog']>): Promise<unknown> {
    return waitFor(() => locator.evaluate((el) => el.matches(':focus')), { timeoutMs: 10_000, what: 'focus on the expected element' });
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
