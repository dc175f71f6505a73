// The chain check and the preflight in the window, in Chromium against `npm run serve` and the
// real libvirtd: "Check chain" on a chain with a corrupt layer shows the problem on that layer with
// what to do; a copy to a file system too small for it is refused in the dialog, with the numbers,
// before anything starts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, open, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sweepStaleLabDomains, virshBlockJobInfo } from '../lab/harness.ts';
import { E2E, MiB } from './fixture.ts';

const run = (cmd: string, args: string[]): Promise<void> =>
  new Promise((resolve, reject) => execFile(cmd, args, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve())));

/** Garbage over the first entries of a qcow2's L1 table (its offset: the header's 8 bytes at 40). */
async function corruptL1(path: string): Promise<void> {
  const file = await open(path, 'r+');
  try {
    const header = Buffer.alloc(48);
    await file.read(header, 0, 48, 0);
    await file.write(Buffer.alloc(64, 0x5a), 0, 64, Number(header.readBigUInt64BE(40)));
  } finally {
    await file.close();
  }
}

describe('chain check and preflight in the window', { timeout: 300_000 }, () => {
  const e2e = new E2E();
  const page = () => e2e.page;
  const unmount: (() => Promise<void>)[] = [];

  before(async () => {
    await sweepStaleLabDomains();
    await e2e.start();
  });
  after(async () => {
    await e2e.stop();
    for (const u of unmount) await u();
  });

  it('shows each layer after "Check chain", the corrupt one with what to do', async () => {
    const lab = await e2e.lab('check');
    const base = lab.layers[0]!;
    await corruptL1(base);
    await e2e.open(lab);
    const label = `${lab.name}/vda`;
    await page().getByRole('button', { name: `Check chain of ${label}`, exact: true }).click();
    const layers = page().getByRole('list', { name: `Chain check of ${label}, layer by layer`, exact: true });
    await layers.waitFor({ timeout: 60_000 });
    // Each layer is an item of the list; its findings are a list of their own inside it.
    const rows = layers.locator(':scope > li');
    assert.equal(await rows.count(), 3);
    // Active layer first, as the chain is drawn: the base is the last.
    const baseRow = rows.nth(2);
    assert.match(await baseRow.innerText(), /^vda\[\d+\] layer-0-base\.qcow2/);
    await baseRow.getByText(/Problem: qemu-img check found \d+ corruptions? in vda\[\d+\]/).waitFor();
    await baseRow.getByText(/What to do: Run no job on this chain\./).waitFor();
    assert.match(await page().getByRole('status').filter({ hasText: /checked in/ }).first().innerText(), /[1-9]\d* problems?, \d+ warnings? · checked in/);
    await baseRow.scrollIntoViewIfNeeded();
    await e2e.screenshot('chain-check');
  });

  it('refuses a copy to a file system too small for it, in the dialog, with the numbers', async () => {
    const small = await mkdtemp(join(tmpdir(), 'strata-e2e-small-'));
    await chmod(small, 0o755);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0755', 'tmpfs', small]);
    unmount.push(async () => {
      await run('umount', [small]).catch(() => run('umount', ['-l', small]));
      await rmdir(small);
    });
    const lab = await e2e.lab('nospace', { virtualSize: 64 * MiB, baseDataBytes: 40 * MiB, overlayDataBytes: 2 * MiB });
    await e2e.open(lab);
    await page().getByRole('button', { name: `Copy… on ${lab.name}/vda`, exact: true }).click();
    const dialog = e2e.dialog();
    const destination = join(small, 'copy.qcow2');
    await dialog.getByLabel('Destination on the host').fill(destination);
    const preflight = dialog.getByRole('region', { name: 'Preflight' });
    await preflight.getByText('Refused before start: this job would fail on this host').waitFor({ timeout: 30_000 });
    assert.match(await preflight.innerText(), /needs about 4\d(\.\d)? MiB, 20(\.0)? MiB free there/);
    await preflight.getByText(/Problem: Not enough room where the job writes: it needs about 4\d(\.\d)? MiB, 20(\.0)? MiB free on /).waitFor();
    await preflight.getByText(/What to do: Free at least .* MiB there, or copy to a file system with more room\./).waitFor();
    const start = dialog.getByRole('button', { name: 'Start copy' });
    assert.equal(await start.isDisabled(), true, 'Start is held back');
    await dialog.getByText('This would fail on this host; see the preflight above.').waitFor();
    await preflight.scrollIntoViewIfNeeded();
    await e2e.screenshot('dialog-copy-refused');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.deepEqual(await virshBlockJobInfo(lab.name, 'vda'), {}, 'no job started');
    await assert.rejects(stat(destination), 'nothing written');
    assert.deepEqual(e2e.pageErrors, []);
  });
});
