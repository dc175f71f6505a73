// The space guard in the window, in Chromium against `npm run serve` and the real libvirtd: a pull
// started with virsh into an active layer on a nearly full tmpfs is slowed to 1 byte/s by the guard
// at the host's default limit (5 % of the 64 MiB file system) before the file system fills, and its
// job card says so and what to free; the state passes axe-core's WCAG 2.1 A and AA rules in both
// themes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rmdir, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLabDomain, removeLabDomain } from '../../src/main/core/lab/lab.ts';
import { sweepStaleLabDomains, uniqueLabName, virsh, type TestLab } from '../lab/harness.ts';
import { assertAccessibleInBothThemes } from './axe.ts';
import { E2E, MiB } from './fixture.ts';

const run = (cmd: string, args: string[]): Promise<void> =>
  new Promise((resolve, reject) => execFile(cmd, args, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve())));

describe('the space guard in the window', { timeout: 300_000 }, () => {
  const e2e = new E2E();
  const cleanup: (() => Promise<void>)[] = [];

  before(async () => {
    await sweepStaleLabDomains();
    await e2e.start();
  });
  // Undone in the reverse order: the job, the domain and its images, then the tmpfs; the lab's
  // connection is the fixture's, closed last.
  after(async () => {
    for (const c of cleanup.reverse()) await c();
    await e2e.stop();
  });

  it('shows a job slowed by the guard on its card, with what to free', async () => {
    const fs = await mkdtemp(join(tmpdir(), 'strata-guard-e2e-'));
    await chmod(fs, 0o755);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0755', 'tmpfs', fs]);
    cleanup.push(async () => {
      await run('umount', [fs]).catch(() => run('umount', ['-l', fs]));
      await rmdir(fs);
    });
    const name = uniqueLabName('guard-window');
    const lab = await createLabDomain(e2e.conn, { name, dir: join(fs, 'lab'), autoDestroy: true, layers: 3, virtualSize: 64 * MiB, baseDataBytes: 2 * MiB, overlayDataBytes: 12 * MiB });
    cleanup.push(() => removeLabDomain(e2e.conn, lab));
    // 14 MiB left; the pull moves 14 MiB into the active layer, and the guard stops at 3.2 MiB free.
    const s = await statfs(fs);
    await writeFile(join(fs, 'filler'), Buffer.alloc(s.bavail * s.bsize - 14 * MiB, 0x11));

    await virsh(['blockpull', name, 'vda', '--bandwidth', '2']);
    cleanup.push(() => virsh(['blockjob', name, 'vda', '--abort']).then(() => undefined, () => undefined));
    await e2e.open({ name } as TestLab);
    const card = e2e.page.getByRole('region', { name: `Pull job on ${name}/vda`, exact: true });
    const guard = card.getByRole('status', { name: 'Space guard: Slowed by the space guard', exact: true });
    await guard.waitFor({ timeout: 90_000 });
    assert.match((await guard.textContent()) ?? '', /Slowed to 1 byte\/s by the space guard: .* free on .*, below the 3\.2 MiB this host keeps free/);
    assert.match((await guard.textContent()) ?? '', /Free at least .* MiB on .*: the job then goes on at 2\.0 MiB\/s/);
    const left = await statfs(fs);
    assert.ok(left.bavail * left.bsize > MiB, `the file system did not fill: ${left.bavail * left.bsize} bytes free`);
    await e2e.screenshot('job-space-guard');
    await assertAccessibleInBothThemes(e2e.page, 'a job slowed by the space guard');
  });
});
