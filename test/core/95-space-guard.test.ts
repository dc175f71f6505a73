// The space guard on real libvirtd + QEMU and a small tmpfs: a commit into a base on a nearly full
// file system asks for 'low-space', then is slowed to 1 byte/s (or aborted) at the host's limit,
// before the file system fills, with the guest still running; libvirt's block-threshold event on
// the base (`vda[N]`) reaches the engine; freeing space lets the job go on and finish. A real guest
// writing into a full tmpfs is paused by QEMU (ENOSPC): Strata says why, refuses Resume while
// there is no room, and resumes it once space is freed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, rmdir, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { createLabDomain, removeLabDomain } from '../../src/main/core/lab/lab.ts';
import type { Events } from '../../src/shared/contract.ts';
import type { Job } from '../../src/shared/model.ts';
import type { GuestIoPause } from '../../src/shared/space-guard.ts';
import { guestDomainXml, guestImages, type GuestImages } from '../lab/guest.ts';
import { uniqueLabName, virsh, waitFor } from '../lab/harness.ts';
import { engineSuite, jobEvents, MiB, rejection, waitForEnd, waitForJob } from './engine-harness.ts';

const run = (cmd: string, args: string[]): Promise<void> =>
  new Promise((resolve, reject) => execFile(cmd, args, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve())));

/** A tmpfs of `size` at a new folder, unmounted after the test (lazily if QEMU still holds it). */
async function smallFs(ctx: TestContext, size: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-guard-'));
  await chmod(dir, 0o755);
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  ctx.after(async () => {
    await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
    await rmdir(dir);
  });
  return dir;
}

const freeOn = async (dir: string): Promise<number> => {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
};

/** Fills `dir`'s file system with a file until `leave` bytes are free; the file's path. */
async function fillTo(dir: string, leave: number): Promise<string> {
  const path = join(dir, 'filler');
  const bytes = (await freeOn(dir)) - leave;
  assert.ok(bytes > 0, `${dir} has less than ${leave} bytes free already`);
  await writeFile(path, Buffer.alloc(bytes, 0x11));
  return path;
}

let images: GuestImages | null = null;
let noGuest: string | null = null;
try {
  images = await guestImages();
} catch (err) {
  noGuest = `the writing guest cannot be built here: ${err instanceof Error ? err.message : String(err)}`;
}

describe('space guard', { timeout: 300_000 }, () => {
  const t = engineSuite();
  before(() => t.client.call('host.capabilities', { hostId }));

  const guardNotes = (jobId: string) => jobEvents(t).filter((j) => j.id === jobId && j.spaceGuard).map((j) => j.spaceGuard!);

  /** A lab on its own tmpfs, mounted before QEMU starts (its mount namespace would not see a later mount). */
  async function labOnTmpfs(ctx: TestContext, size: string) {
    const fs = await smallFs(ctx, size);
    const name = uniqueLabName('space-guard');
    const lab = await createLabDomain(t.conn, {
      name,
      dir: join(fs, 'lab'),
      autoDestroy: true,
      layers: 3,
      virtualSize: 64 * MiB,
      baseDataBytes: 2 * MiB,
      overlayDataBytes: 12 * MiB,
    });
    ctx.after(() => removeLabDomain(t.conn, lab));
    return { fs, lab };
  }

  for (const action of ['throttle', 'abort'] as const) {
    it(`${action}: a commit into a base on a nearly full tmpfs asks for low-space, then the guard ${action === 'throttle' ? 'slows it to 1 byte/s' : 'aborts it'} before the file system fills`, async (ctx) => {
      const { fs, lab } = await labOnTmpfs(ctx, '64m');
      const [base] = lab.layers as [string, string, string];
      // The commit moves the middle layer's 12 MiB into the base; 14 MiB are left (the rest taken by
      // a file removed later), and the guard stops at 8 MiB free (the smaller of 8 MiB and half the
      // file system), warns at 16 MiB, and lets a throttled job go on once 16 MiB are free again.
      const filler = await fillTo(fs, 14 * MiB);
      await t.client.call('hosts.setSpaceGuard', { hostId, minFreeBytes: 8 * MiB, minFreePercent: 50, action });
      ctx.after(() => t.client.call('hosts.setSpaceGuard', { hostId, minFreeBytes: 256 * MiB, minFreePercent: 5, action: 'throttle' }));
      const ref = { hostId, domain: lab.name, disk: 'vda' };
      const { disk } = await t.client.call('domain.get', { hostId, domain: lab.name }).then((d) => ({ disk: d.disks[0]! }));
      const operation = { kind: 'commit' as const, top: disk.chain[1]!.index!, base: disk.chain[2]!.index! };
      const preview = await t.client.call('operation.preview', { ...ref, operation });
      assert.equal(preview.preflight?.verdict, 'at-risk', JSON.stringify(preview.preflight));
      const unconfirmed = await rejection(t.client.call('job.start', { ...ref, operation, bandwidthBytesPerSec: 2 * MiB, confirm: ['drop-layers'] }));
      assert.match(unconfirmed.message, /close to what it needs/);

      const job = await t.client.call('job.start', { ...ref, operation, bandwidthBytesPerSec: 2 * MiB, confirm: ['drop-layers', 'low-space'] });
      const baseDev = `vda[${operation.base}]`;
      if (action === 'throttle') {
        const throttled = await waitForJob(t, (j) => j.id === job.id && j.spaceGuard?.state === 'throttled' && j.bandwidthBytesPerSec === 1, { timeoutMs: 60_000, what: 'the guard to throttle the commit' });
        const note = throttled.spaceGuard!;
        ctx.diagnostic(note.message);
        assert.equal(note.target, base);
        assert.equal(note.thresholdDev, baseDev);
        assert.match(note.message, /^Slowed to 1 byte\/s by the space guard: .* free on .*, below the 8\.0 MiB this host keeps free/);
        assert.ok(guardNotes(job.id).some((n) => n.state === 'warning'), 'it warned first');
        assert.ok(guardNotes(job.id).some((n) => n.thresholdEvents > 0), `libvirt's block-threshold event for ${baseDev} reached the engine`);
        const free = await freeOn(fs);
        assert.ok(free > 4 * MiB, `the file system is not full: ${free} bytes free`);
        assert.equal((await t.client.call('domain.get', { hostId, domain: lab.name })).state, 'running', 'the guest runs on');
        assert.equal(jobEvents(t).filter((j) => j.id === job.id).at(-1)?.phase, 'running');

        // Room again: the job goes on at its own limit and finishes.
        await rm(filler);
        const resumed = await waitForJob(t, (j) => j.id === job.id && j.spaceGuard?.state === 'resumed', { timeoutMs: 30_000, what: 'the guard to give the limit back' });
        assert.equal(resumed.spaceGuard?.restoreBandwidthBytesPerSec, null);
        const ended = await waitForEnd(t, job.id, { timeoutMs: 60_000 });
        assert.equal(ended.phase, 'completed', ended.outcome ?? '');
      } else {
        const ended: Job = await waitForEnd(t, job.id, { timeoutMs: 60_000 });
        assert.equal(ended.phase, 'cancelled', ended.outcome ?? '');
        assert.equal(ended.spaceGuard?.state, 'aborted');
        assert.match(ended.spaceGuard?.message ?? '', /^Aborted by the space guard: .* free on .*, below the 8\.0 MiB this host keeps free/);
        const kept = (await t.client.call('history.list', {})).find((j) => j.id === job.id);
        assert.equal(kept?.spaceGuard?.state, 'aborted', 'the history says why');
        assert.ok((await freeOn(fs)) > 4 * MiB, 'the file system is not full');
        assert.equal((await t.client.call('domain.get', { hostId, domain: lab.name })).state, 'running', 'the guest runs on');
      }
    });
  }

  it('a guest paused by QEMU on a full tmpfs: Strata says why, refuses Resume until space is freed, then resumes it', { skip: noGuest ?? false }, async (ctx) => {
    const fs = await smallFs(ctx, '40m');
    const name = uniqueLabName('space-guard-enospc');
    const dir = join(fs, 'lab');
    // A base and an empty active layer the guest writes into; the guest writes 40 MiB of records.
    const lab = await createLabDomain(t.conn, { name, dir, autoDestroy: true, layers: 2, virtualSize: 64 * MiB, baseDataBytes: MiB, overlayDataBytes: 0 });
    await lab.domain.destroy();
    ctx.after(() => removeLabDomain(t.conn, { name, dir }));
    // Room for some 500 records: QEMU pauses the guest within seconds of its first writes.
    const filler = await fillTo(fs, 2 * MiB);
    const serialLog = join(dir, 'serial.log');
    const domain = await t.conn.createXML(guestDomainXml({ name, images: images!, diskPath: lab.layers.at(-1)!, serialLog, records: 10_240 }), 2);
    ctx.after(() => domain.destroy().catch(() => undefined));

    const pauseEvent = await waitFor(
      () => t.events.find((e): e is { event: 'domain.ioPause'; data: Events['domain.ioPause'] } => e.event === 'domain.ioPause' && (e.data as GuestIoPause).domain === name && (e.data as GuestIoPause).paused),
      { timeoutMs: 180_000, intervalMs: 250, what: 'QEMU to pause the guest when the tmpfs fills' },
    );
    const pause = pauseEvent.data;
    ctx.diagnostic(pause.message);
    assert.equal(pause.reason, 'enospc');
    assert.equal(pause.path, lab.layers.at(-1));
    assert.equal(pause.disk, 'vda');
    assert.equal(pause.canResume, false);
    assert.match(pause.message, /^QEMU paused the guest: no space was left writing .* \(vda\)\. .* free on .* now; Resume needs /);
    assert.match(await virsh(['domstate', name, '--reason']), /paused \(I\/O error\)/);
    assert.deepEqual(await t.client.call('domain.ioPause', { hostId, domain: name }).then((p) => p?.paused), true);

    const refused = await rejection(t.client.call('domain.resume', { hostId, domain: name }));
    assert.equal(refused.kind, 'conflict');
    assert.match(refused.message, /^Not resumed: only .* free on .*, where the guest's write failed/);
    assert.match(await virsh(['domstate', name]), /paused/);

    await rm(filler);
    assert.equal((await t.client.call('domain.ioPause', { hostId, domain: name }))?.canResume, true);
    assert.deepEqual(await t.client.call('domain.resume', { hostId, domain: name }), { resumed: name });
    await waitFor(async () => /running/.test(await virsh(['domstate', name])), { what: 'the guest to run again' });
    await waitFor(() => t.events.some((e) => e.event === 'domain.ioPause' && (e.data as GuestIoPause).domain === name && !(e.data as GuestIoPause).paused), { what: 'the pause to be told over' });
    assert.equal(await t.client.call('domain.ioPause', { hostId, domain: name }), null);
  });
});
