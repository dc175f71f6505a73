// A host over SSH from the window, in Chromium against `npm run serve` started without a terminal
// (its own session, as the desktop app is): an sshd the test starts on 127.0.0.1 (its own host
// key, authorized_keys and sshd_config; see test/ssh/sshd.ts) in front of this machine's
// libvirtd. The host key's fingerprint is shown and trusted, the key's passphrase typed in the
// page (a wrong one first, said as such), the host connects and a domain's chain is shown through
// SSH; a password login takes its password from the page (a wrong one first); a changed host key
// is refused with its warning and nothing to accept. Each state passes the axe-core audit, and the
// prompts are answered from the keyboard alone.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runOpenSsh } from '../../src/main/core/hosts/ssh/openssh.ts';
import { sweepStaleLabDomains, type TestLab } from '../lab/harness.ts';
import { passwordUserMissing, sshdMissing, startSshd, type TestSshd } from '../ssh/sshd.ts';
import { assertAccessibleInBothThemes } from './axe.ts';
import { E2E } from './fixture.ts';

const missing = sshdMissing();
if (missing) console.log(`SKIPPED: ${missing}`);

describe('a host over SSH, from the window', { skip: missing ?? false, timeout: 300_000 }, () => {
  const e2e = new E2E();
  const page = () => e2e.page;
  let sshd: TestSshd;
  let lab: TestLab;
  const saved = { config: process.env['STRATA_SSH_CONFIG'], agent: process.env['SSH_AUTH_SOCK'] };

  before(async () => {
    await sweepStaleLabDomains();
    sshd = await startSshd({ passwordUser: passwordUserMissing() === null });
    // `npm run serve` inherits these: Strata's ssh reads the test's ssh_config, and no agent.
    process.env['STRATA_SSH_CONFIG'] = sshd.sshConfig;
    delete process.env['SSH_AUTH_SOCK'];
    await e2e.start();
    await page().emulateMedia({ reducedMotion: 'reduce' });
    page().setDefaultTimeout(60_000);
    lab = await e2e.lab('ssh');
  });

  after(async () => {
    await e2e.stop();
    await sshd?.close();
    for (const [name, value] of [['STRATA_SSH_CONFIG', saved.config], ['SSH_AUTH_SOCK', saved.agent]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  async function addHost(uri: string, label: string) {
    await page().getByRole('button', { name: 'Add host…' }).click();
    const dialog = page().getByRole('dialog', { name: 'Add a host' });
    await dialog.getByRole('textbox', { name: 'libvirt URI' }).fill(uri);
    await dialog.getByRole('textbox', { name: /^Label/ }).fill(label);
    await dialog.getByRole('button', { name: 'Add host' }).click();
    await dialog.waitFor({ state: 'detached' });
  }

  it('shows the host key by its fingerprint, trusts it, takes the passphrase (a wrong one first) and shows a chain through SSH', async () => {
    const p = page();
    await addHost(sshd.uri(), 'Over SSH');
    const keyDialog = p.getByRole('dialog', { name: /^Trust the SSH host key of \[127\.0\.0\.1\]:\d+\?$/ });
    await keyDialog.getByText(sshd.fingerprint, { exact: true }).waitFor();
    await keyDialog.getByText(sshd.knownHosts, { exact: true }).waitFor();
    await p.getByRole('button', { name: /^Over SSH\s*, Needs you$/ }).waitFor();
    await e2e.screenshot('ssh-host-key');
    await assertAccessibleInBothThemes(p, 'the SSH host-key prompt');

    // Keyboard alone: the page behind is inert, so Tab reaches the dialog's buttons.
    await p.keyboard.press('Tab');
    const trust = keyDialog.getByRole('button', { name: 'Trust and connect' });
    for (let i = 0; i < 6 && !(await trust.evaluate((b) => b.matches(':focus'))); i++) await p.keyboard.press('Tab');
    assert.equal(await trust.evaluate((b) => b.matches(':focus')), true, 'Tab reaches "Trust and connect"');
    await p.keyboard.press('Enter');
    await keyDialog.waitFor({ state: 'detached' });
    assert.match(await readFile(sshd.knownHosts, 'utf8'), /^\|1\|\S+ ssh-ed25519 AAAA\S+\n$/, 'the key, hashed, in known_hosts');

    const passDialog = p.getByRole('dialog', { name: 'Key passphrase for Over SSH' });
    const field = passDialog.getByLabel('Passphrase', { exact: true });
    await field.waitFor();
    assert.equal(await field.evaluate((f) => f.matches(':focus')), true, 'focus starts in the passphrase field');
    await passDialog.getByText(new RegExp(`Enter passphrase for key '${sshd.clientKey}'`)).waitFor();
    await p.keyboard.type('not the passphrase');
    await p.keyboard.press('Enter');
    await passDialog.getByRole('alert').filter({ hasText: 'That passphrase was not accepted. Type it again.' }).waitFor();
    await e2e.screenshot('ssh-passphrase-refused');
    await assertAccessibleInBothThemes(p, 'the SSH passphrase prompt after a wrong passphrase');
    await p.keyboard.type(sshd.passphrase);
    await p.keyboard.press('Enter');
    await passDialog.waitFor({ state: 'detached' });

    await p.getByRole('button', { name: /^Over SSH\s*, Connected$/ }).waitFor();
    const domains = p.getByRole('list', { name: 'Domains on Over SSH' });
    await domains.getByRole('button', { name: new RegExp(lab.name) }).click();
    await e2e.chain(lab).getByRole('listitem').nth(2).waitFor();
    assert.equal(await e2e.chain(lab).getByRole('listitem').count(), 3, "the lab's three layers, read through SSH");
    await e2e.screenshot('ssh-connected-chain');

    const log = await readFile(join(e2e.served.dataDir, 'logs', 'strata.log'), 'utf8');
    assert.match(log, /a host asks the user/, 'the questions are logged');
    assert.doesNotMatch(log, /not the passphrase|correct horse/, 'their answers are not');
  });

  it('takes a password typed in the page (a wrong one first, said so) for a password login', { skip: passwordUserMissing() ?? false }, async () => {
    const p = page();
    const user = sshd.passwordUser!;
    await sshd.trustHostKey();
    await addHost(user.uri(), 'Password login');
    const dialog = p.getByRole('dialog', { name: 'Password for Password login' });
    const field = dialog.getByLabel('Password', { exact: true });
    await field.waitFor();
    assert.equal(await field.evaluate((f) => f.matches(':focus')), true, 'focus starts in the password field');
    await dialog.getByText(new RegExp(`${user.name}@127\\.0\\.0\\.1's password:`)).waitFor();
    await p.keyboard.type('not the password');
    await p.keyboard.press('Enter');
    await dialog.getByRole('alert').filter({ hasText: 'That password was not accepted. Type it again.' }).waitFor();
    await p.keyboard.type(user.password);
    await p.keyboard.press('Enter');
    await dialog.waitFor({ state: 'detached' });
    await p.getByRole('button', { name: /^Password login\s*, Connected$/ }).waitFor();
    const log = await readFile(join(e2e.served.dataDir, 'logs', 'strata.log'), 'utf8');
    assert.match(log, /kind=password .*msg="a host asks the user"/);
    assert.equal(log.includes(user.password), false, 'the password is not in the log');
    assert.doesNotMatch(log, /not the password/);
    await p.getByRole('button', { name: 'Remove host Password login' }).click();
    await p.getByRole('button', { name: 'Yes, remove' }).click();
    await p.getByRole('button', { name: /^Password login\s*,/ }).waitFor({ state: 'detached' });
  });

  it('refuses a changed host key with its warning and offers nothing to accept', async () => {
    const p = page();
    await p.getByRole('button', { name: 'Remove host Over SSH' }).click();
    await p.getByRole('button', { name: 'Yes, remove' }).click();
    await p.getByRole('button', { name: /^Over SSH\s*,/ }).waitFor({ state: 'detached' });
    const made = await runOpenSsh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(sshd.dir, 'impostor')]);
    assert.equal(made.code, 0, made.stderr);
    const impostor = (await readFile(join(sshd.dir, 'impostor.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
    const known = `[127.0.0.1]:${sshd.port} ${impostor}\n`;
    await writeFile(sshd.knownHosts, known);

    await addHost(sshd.uri(), 'Changed key');
    await p.getByRole('button', { name: /^Changed key\s*, Needs you$/ }).waitFor();
    await p.getByText(/The host's SSH key has changed/).first().waitFor();
    await p.getByText(/man-in-the-middle/).first().waitFor();
    assert.equal(await p.getByRole('dialog').count(), 0, 'no prompt: a changed key is never offered for trust');
    assert.equal(await readFile(sshd.knownHosts, 'utf8'), known, 'known_hosts is left as it was');
    await e2e.screenshot('ssh-host-key-changed');
    await assertAccessibleInBothThemes(p, 'a host whose SSH host key changed');
  });
});
