// The file a cancelled or failed copy leaves: Strata names it on the job, keeps it in the history,
// and removes it only when asked with the 'delete-files' confirmation, only while no domain uses
// it, only while it is the very file the copy made, and never once a later copy has written into
// it; on a host whose files Strata cannot see, it names the file and leaves it to the user. Real
// copies on libvirtd + QEMU, checked with virsh and the file system.
import assert from 'node:assert/strict';
import { copyFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { labDomainXml } from '../../src/main/core/lab/lab-domain-xml.ts';
import type { Job } from '../../src/shared/model.ts';
import { engineSuite, jobEvents, liveChain, MiB, previewAndStart, rejection, waitForEnd, waitForJob } from './engine-harness.ts';
import { startRemoteForwarder } from '../lab/remote-forwarder.ts';
import { uniqueLabName, virsh, type TestLab } from '../lab/harness.ts';

const exists = (path: string): Promise<boolean> => stat(path).then(
  () => true,
  () => false,
);

describe('files a copy leaves behind', { timeout: 300_000 }, () => {
  const t = engineSuite({ labsTogether: true });

  // QEMU 7.2's mirror copies its first 32 MiB unthrottled: 48 MiB keeps a 1 MiB/s copy running.
  const lab = (ctx: TestContext): Promise<TestLab> => t.lab(ctx, { virtualSize: 64 * MiB, baseDataBytes: 48 * MiB, overlayDataBytes: MiB });

  /** A throttled copy to `destination`, cancelled while it runs: its job, ended. */
  async function cancelledCopy(domain: string, destination: string, onHost = hostId): Promise<Job> {
    const ref = { hostId: onHost, domain, disk: 'vda' };
    const { job } = await previewAndStart(t.client, ref, { kind: 'copy', destination }, { bandwidthBytesPerSec: MiB });
    await waitForJob(t, (j) => j.id === job.id && j.phase === 'running' && j.cur > 0, { what: 'the copy to make progress' });
    await t.client.call('job.abort', ref);
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'cancelled', ended.outcome ?? '');
    return ended;
  }

  const remove = (job: Job, confirm: ('delete-files' | 'drop-layers')[] = ['delete-files']) =>
    t.client.call('job.removeLeftover', { hostId: job.hostId, jobId: job.id, confirm });

  it('a cancelled copy names its partial file, which is removed only when confirmed, and the history keeps it', async (ctx) => {
    const l = await lab(ctx);
    const chain = await liveChain(l.name);
    const destination = join(l.dir, 'cancelled.qcow2');
    const ended = await cancelledCopy(l.name, destination);
    const left = ended.leftover;
    assert.ok(left, 'the cancelled copy names the file it left');
    assert.equal(left.path, destination);
    assert.equal(left.partial, true, 'cancelled before ready: a partial copy');
    assert.equal(left.status, 'left');
    assert.ok(left.fileId !== null && (left.bytes ?? 0) > 0, `size and identity recorded: ${JSON.stringify(left)}`);
    ctx.diagnostic(`left ${left.path}: ${left.bytes} bytes on disk`);

    const unconfirmed = await rejection(remove(ended, []));
    assert.equal(unconfirmed.kind, 'conflict');
    assert.match(unconfirmed.message, /Not removed: this deletes .*cancelled\.qcow2/);
    assert.match(unconfirmed.hint ?? '', /delete-files/);
    const wrongConfirmation = await rejection(remove(ended, ['drop-layers']));
    assert.match(wrongConfirmation.message, /Not removed/);
    assert.ok(await exists(destination), 'nothing removed without the confirmation');

    const unknown = await rejection(t.client.call('job.removeLeftover', { hostId, jobId: `${ended.id}0`, confirm: ['delete-files'] }));
    assert.equal(unknown.kind, 'not-found');

    const removed = await remove(ended);
    assert.equal(removed.leftover?.status, 'removed');
    assert.equal(await exists(destination), false, 'the partial copy is gone');
    assert.deepEqual(await liveChain(l.name), chain, 'the disk is untouched');
    assert.ok(jobEvents(t).some((j) => j.id === ended.id && j.leftover?.status === 'removed'), 'watchers hear of the removal');
    const recorded = (await t.client.call('history.list', {})).find((j) => j.id === ended.id);
    assert.equal(recorded?.leftover?.status, 'removed', 'the history records the removal');
    const again = await rejection(remove(ended));
    assert.match(again.message, /removed already/);
  });

  it('a file a domain uses, or one put in its place since, is not removed', async (ctx) => {
    const l = await lab(ctx);
    const destination = join(l.dir, 'used.qcow2');
    const ended = await cancelledCopy(l.name, destination);
    assert.ok(ended.leftover);

    // A shut-off domain defined on the file: its saved definition uses it.
    const user = uniqueLabName('user');
    await virsh(['define', await writeXml(l.dir, user, destination)]);
    ctx.after(() => virsh(['undefine', user]).catch(() => undefined));
    const inUse = await rejection(remove(ended));
    assert.equal(inUse.kind, 'conflict');
    assert.match(inUse.message, new RegExp(`used by ${user}`));
    assert.ok(await exists(destination));
    await virsh(['undefine', user]);

    // The same path, another file (a new inode): not the copy's to remove.
    await copyFile(destination, `${destination}.new`);
    await rename(`${destination}.new`, destination);
    const replaced = await rejection(remove(ended));
    assert.match(replaced.message, /not the file the copy left/);
    assert.ok(await exists(destination), 'the replacement stays');
  });

  it('a later copy into the file takes it over; a copy kept at ready leaves nothing to remove', async (ctx) => {
    const l = await lab(ctx);
    const ref = { hostId, domain: l.name, disk: 'vda' };
    const destination = join(l.dir, 'reused.qcow2');
    const first = await cancelledCopy(l.name, destination);
    assert.equal(first.leftover?.status, 'left');

    const { job: second } = await previewAndStart(
      t.client,
      ref,
      { kind: 'copy', destination, reuseExisting: true },
      { bandwidthBytesPerSec: MiB, confirm: ['reuse-existing-file'] },
    );
    const reused = (await t.client.call('history.list', {})).find((j) => j.id === first.id);
    assert.equal(reused?.leftover?.status, 'reused', 'the first copy no longer offers the file');
    const refused = await rejection(remove(first));
    assert.match(refused.message, /later copy/);
    await t.client.call('job.abort', ref);
    const secondEnded = await waitForEnd(t, second.id);
    assert.equal(secondEnded.leftover, null, 'a copy into an existing file never offers to remove it');
    assert.ok(await exists(destination));

    const keep = join(l.dir, 'kept.qcow2');
    const { job: kept } = await previewAndStart(t.client, ref, { kind: 'copy', destination: keep, afterReady: 'keep' });
    const keptEnded = await waitForEnd(t, kept.id, { timeoutMs: 60_000 });
    assert.equal(keptEnded.phase, 'completed', keptEnded.outcome ?? '');
    assert.equal(keptEnded.leftover, null, 'a copy kept at ready is the copy asked for');
    const noFile = await rejection(remove(keptEnded));
    assert.match(noFile.message, /left no file of its own/);
    assert.ok(await exists(keep));
    await rm(keep);
  });

  it('on a host Strata cannot see into, the leftover is named and its removal left to the user', async (ctx) => {
    const forwarder = await startRemoteForwarder('127.0.0.2');
    ctx.after(() => forwarder.close());
    const remote = await t.client.call('hosts.add', { uri: forwarder.uri, label: 'far' });
    ctx.after(() => t.client.call('hosts.remove', { hostId: remote.id }));
    const l = await lab(ctx);
    const destination = join(l.dir, 'far.qcow2');
    const ended = await cancelledCopy(l.name, destination, remote.id);
    assert.deepEqual(ended.leftover, { path: destination, partial: true, bytes: null, fileId: null, status: 'left' });
    const refused = await rejection(remove(ended));
    assert.match(refused.message, /on far, a remote host: Strata removes files only on this machine/);
    assert.match(refused.hint ?? '', /rm /);
    assert.ok(await exists(destination), 'the file stays for its owner to remove');
  });
});

/** A persistent domain's XML on `disk`, written beside it; returns the path for `virsh define`. */
async function writeXml(dir: string, name: string, disk: string): Promise<string> {
  const path = join(dir, `${name}.xml`);
  await writeFile(path, labDomainXml({ name, diskPath: disk }));
  return path;
}
