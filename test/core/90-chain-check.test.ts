// The chain check and the preflight on real libvirtd + QEMU: a layer with a corrupt L1 table and a
// backing file recorded without its format are reported per layer; a copy to a file system too
// small for it is refused before it starts, with the numbers; one that only just fits asks for
// 'low-space'; a base QEMU's user cannot write is named in the preview and the start is refused.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, open, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import type { Job } from '../../src/shared/model.ts';
import { engineSuite, jobEvents, liveChain, MiB, rejection, waitForEnd, waitForJob } from './engine-harness.ts';

const run = (cmd: string, args: string[]): Promise<void> =>
  new Promise((resolve, reject) => execFile(cmd, args, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve())));

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

/** Writes garbage over the first entries of a qcow2's L1 table (its offset is the header's 8 bytes at 40). */
async function corruptL1(path: string): Promise<void> {
  const file = await open(path, 'r+');
  try {
    const header = Buffer.alloc(48);
    await file.read(header, 0, 48, 0);
    const l1 = Number(header.readBigUInt64BE(40));
    assert.ok(l1 > 0, 'the image has an L1 table');
    await file.write(Buffer.alloc(64, 0x5a), 0, 64, l1);
  } finally {
    await file.close();
  }
}

/**
 * Makes a qcow2 forget its backing file's format: QEMU 7.2 refuses to create such an image, so the
 * header extension that records it (magic 0xe2792aca) gets a magic QEMU does not know and skips.
 */
async function forgetBackingFormat(path: string): Promise<void> {
  const file = await open(path, 'r+');
  try {
    const head = Buffer.alloc(64 * 1024);
    await file.read(head, 0, head.length, 0);
    const at = head.indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]));
    assert.ok(at > 0, 'the image records its backing format');
    await file.write(Buffer.from('STRK'), 0, 4, at);
  } finally {
    await file.close();
  }
}

/** A tmpfs of `size` at a new folder, unmounted after the test (lazily if QEMU still holds it). */
async function smallFs(ctx: TestContext, size: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-check-'));
  await chmod(dir, 0o755);
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  ctx.after(async () => {
    await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
    await rmdir(dir);
  });
  return dir;
}

describe('chain check and preflight', { timeout: 180_000 }, () => {
  const t = engineSuite({ labsTogether: true });
  // As the window does when it shows a host: a preview judges QEMU's permissions only once
  // libvirt's capabilities have been read (it never waits for them).
  before(() => t.client.call('host.capabilities', { hostId }));

  const jobsOf = (domain: string): Job[] => jobEvents(t, domain);

  it('reports a corrupt layer and a backing file without a recorded format, per layer, and refuses a commit through them', async (ctx) => {
    const l = await t.lab(ctx, { virtualSize: 64 * MiB, baseDataBytes: 4 * MiB, overlayDataBytes: MiB });
    const [base, middle] = l.layers as [string, string, string];
    await corruptL1(base);
    await forgetBackingFormat(middle);

    const check = await t.client.call('chain.check', { hostId, domain: l.name, disk: 'vda' });
    ctx.diagnostic(`checked ${check.layers.length} layers in ${check.tookMs} ms`);
    assert.equal(check.live, true);
    assert.equal(check.local, true);
    assert.deepEqual(check.layers.map((x) => x.path), [...l.layers].reverse());
    assert.ok(check.findings.some((f) => f.code === 'live' && /cannot see metadata QEMU still holds/.test(f.message)), 'a live check says what it cannot prove');
    assert.ok(check.qemuUser, "QEMU's user comes from libvirt");

    const baseCheck = check.layers[2]!;
    assert.ok((baseCheck.corruptions ?? 0) > 0, `qemu-img check counts corruptions: ${JSON.stringify(baseCheck)}`);
    const corrupt = baseCheck.findings.find((f) => f.code === 'corrupt');
    assert.ok(corrupt, JSON.stringify(baseCheck.findings));
    assert.equal(corrupt.severity, 'error');
    assert.match(corrupt.message, new RegExp(`corruption.* in vda\\[\\d+\\] ${base}`));
    assert.match(corrupt.action ?? '', /qemu-img check -r all/);

    const middleCheck = check.layers[1]!;
    assert.equal(middleCheck.backingFile, base);
    assert.equal(middleCheck.backingFormat, null);
    const unrecorded = middleCheck.findings.find((f) => f.code === 'backing-format-missing');
    assert.ok(unrecorded, JSON.stringify(middleCheck.findings));
    assert.match(unrecorded.message, /without its format, so QEMU has to guess it/);
    assert.match(unrecorded.action ?? '', /qemu-img rebase -u -b .* -F /);

    const active = check.layers[0]!;
    assert.equal(active.backingFormat, 'qcow2');
    assert.equal(active.findings.filter((f) => f.severity === 'error').length, 0, JSON.stringify(active.findings));
    assert.equal(active.format, 'qcow2');
    assert.ok(active.mount && active.mount.freeBytes > 0 && active.mount.readOnly === false);

    // The preview of a commit into the corrupt base reuses the check: refused before start.
    const operation = { kind: 'commit' as const };
    const preview = await t.client.call('operation.preview', { hostId, domain: l.name, disk: 'vda', operation });
    assert.equal(preview.preflight?.verdict, 'refused', JSON.stringify(preview.preflight));
    const refused = await rejection(t.client.call('job.start', { hostId, domain: l.name, disk: 'vda', operation, confirm: ['drop-layers'] }));
    assert.equal(refused.kind, 'conflict');
    assert.match(refused.message, /^Not started: .*corruption/);
    assert.equal(jobsOf(l.name).length, 0, 'no job was started');
  });

  it('refuses a copy to a file system too small for it before it starts, with the numbers', async (ctx) => {
    const small = await smallFs(ctx, '20m');
    const l = await t.lab(ctx, { virtualSize: 64 * MiB, baseDataBytes: 40 * MiB, overlayDataBytes: 2 * MiB });
    const destination = join(small, 'copy.qcow2');
    const operation = { kind: 'copy' as const, destination };
    const preview = await t.client.call('operation.preview', { hostId, domain: l.name, disk: 'vda', operation });
    const pf = preview.preflight;
    assert.ok(pf, 'a copy has a preflight');
    ctx.diagnostic(`needed ${pf.neededBytes}, free ${pf.freeBytes}: ${pf.estimate}`);
    assert.equal(pf.verdict, 'refused');
    assert.equal(pf.target, destination);
    assert.ok(pf.neededBytes !== null && pf.neededBytes > 40 * MiB, `qemu-img measure counts the data: ${pf.neededBytes}`);
    assert.ok(pf.freeBytes !== null && pf.freeBytes <= 20 * MiB);
    assert.match(pf.estimate ?? '', /qemu-img measure/);
    const noSpace = pf.findings.find((f) => f.code === 'no-space');
    assert.ok(noSpace);
    assert.match(noSpace.message, /needs about 4\d(\.\d)? MiB, 20(\.0)? MiB free on /);

    const refused = await rejection(t.client.call('job.start', { hostId, domain: l.name, disk: 'vda', operation }));
    assert.equal(refused.kind, 'conflict');
    assert.match(refused.message, /^Not started: Not enough room where the job writes: it needs about 4\d(\.\d)? MiB, 20(\.0)? MiB free/);
    assert.match(refused.hint ?? '', /Free at least .* MiB there, or copy to a file system with more room/);
    assert.equal(await exists(destination), false, 'nothing was written');
    assert.equal(jobsOf(l.name).length, 0, 'no job was started');
    assert.deepEqual(await liveChain(l.name), [...l.layers].reverse());
  });

  it('asks for low-space when a copy only just fits, and starts once it is confirmed', async (ctx) => {
    // Mounted before the domain starts: QEMU's own mount namespace would not see a later mount.
    const tight = await smallFs(ctx, '56m');
    const l = await t.lab(ctx, { virtualSize: 64 * MiB, baseDataBytes: 40 * MiB, overlayDataBytes: 2 * MiB });
    const ref = { hostId, domain: l.name, disk: 'vda' };
    const operation = { kind: 'copy' as const, destination: join(tight, 'copy.qcow2'), afterReady: 'keep' as const };
    const preview = await t.client.call('operation.preview', { ...ref, operation });
    assert.equal(preview.preflight?.verdict, 'at-risk', JSON.stringify(preview.preflight));
    assert.ok(preview.needs.includes('low-space'));
    const unconfirmed = await rejection(t.client.call('job.start', { ...ref, operation }));
    assert.match(unconfirmed.message, /^Not started: the room where the job writes is close to what it needs \(needs about .* MiB, .* MiB free\)/);
    assert.match(unconfirmed.hint ?? '', /low-space/);
    const job = await t.client.call('job.start', { ...ref, operation, confirm: ['low-space'] });
    const ended = await waitForEnd(t, job.id, { timeoutMs: 60_000 });
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
  });

  it("names a base QEMU's user cannot write in the preview, and refuses the commit before it starts", async (ctx) => {
    const l = await t.lab(ctx, { virtualSize: 64 * MiB, baseDataBytes: 2 * MiB, overlayDataBytes: MiB });
    const base = l.layers[0]!;
    const ref = { hostId, domain: l.name, disk: 'vda' };
    const operation = { kind: 'commit' as const };

    // Owned by root but writable by its owner: libvirt hands it to QEMU at the job's start.
    await chown(base, 0, 0);
    await chmod(base, 0o644);
    const handedOver = await t.client.call('operation.preview', { ...ref, operation });
    assert.equal(handedOver.preflight?.verdict, 'ok', JSON.stringify(handedOver.preflight));

    // Read-only for everyone: handing it over does not make it writable.
    await chmod(base, 0o444);
    const preview = await t.client.call('operation.preview', { ...ref, operation });
    const pf = preview.preflight;
    assert.equal(pf?.verdict, 'refused', JSON.stringify(pf));
    assert.equal(pf?.target, base);
    const denied = pf?.findings.find((f) => f.code === 'not-writable');
    assert.ok(denied, JSON.stringify(pf?.findings));
    assert.ok(denied.message.includes(base), 'the layer is named');
    assert.match(denied.message, /mode 0444\): the commit would fail with "Permission denied"/);
    assert.match(denied.action ?? '', /chmod u\+w/);

    const refused = await rejection(t.client.call('job.start', { ...ref, operation, confirm: ['drop-layers'] }));
    assert.match(refused.message, /^Not started: .*cannot write/);
    assert.ok(refused.message.includes(base));
    assert.equal(jobsOf(l.name).length, 0, 'no job was started');

    // With write permission back, the same commit runs.
    await chmod(base, 0o644);
    const job = await t.client.call('job.start', { ...ref, operation: { kind: 'commit', afterReady: 'pivot' }, confirm: ['drop-layers'] });
    await waitForJob(t, (j) => j.id === job.id && j.phase !== 'requested', { what: 'the commit to run' });
    const ended = await waitForEnd(t, job.id, { timeoutMs: 60_000 });
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
  });

  it('capabilities: versions, the security driver and QEMU\'s user, once per connection', async () => {
    const caps = await t.client.call('host.capabilities', { hostId });
    assert.equal(caps.problem, null);
    assert.match(caps.libvirtVersion ?? '', /^\d+\.\d+/);
    assert.match(caps.qemuVersion ?? '', /^\d+\.\d+/);
    assert.ok(['dac', 'apparmor', 'selinux', 'none'].includes(caps.security));
    assert.ok(caps.qemuUser);
    assert.equal(caps.unsupported.pull, undefined);
    assert.equal(caps.unsupported.snapshot, undefined);
    assert.equal(await t.client.call('host.capabilities', { hostId }).then((c) => c.qemuVersion), caps.qemuVersion);
  });
});
