// What the backup tests share: a core with a backup folder of its own, writes into a running
// disk, and waiting for a set to settle.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { makeTraversable } from '../../src/main/core/lab/images.ts';
import type { BackupEvents, BackupSet } from '../../src/shared/backup.ts';
import { startTestCore, type TestCore } from '../core/core-harness.ts';
import { runTool } from '../../src/main/core/lab/images.ts';
import { TEST_URI, virsh, waitFor } from '../lab/harness.ts';

export const MiB = 1024 * 1024;

/** A core whose backups go to a fresh folder QEMU can reach, removed when the test ends. */
export async function backupCore(ctx: TestContext): Promise<{ t: TestCore; folder: string }> {
  const folder = await mkdtemp(join(tmpdir(), 'strata-backups-'));
  await makeTraversable(folder);
  ctx.after(() => rm(folder, { recursive: true, force: true }));
  const t = await startTestCore({ uri: TEST_URI });
  ctx.after(() => t.close());
  await t.client.call('backup.setLocation', { hostId, path: folder });
  return { t, folder };
}

/**
 * Writes `length` bytes of `pattern` at `offset` into the running domain's disk through QEMU's own
 * block layer (HMP's qemu-io on the disk's device), as a guest's write goes: the lab domain has no
 * OS that could write on request, and a write from outside QEMU would bypass the dirty bitmaps an
 * incremental backup reads. (libvirt marks the domain tainted by the monitor command; it is a test domain.)
 */
export async function guestWrite(domain: string, pattern: number, offset: number, length: number): Promise<void> {
  const out = await virsh(['qemu-monitor-command', domain, '--hmp', `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P ${pattern} ${offset} ${length}"`]);
  if (out.trim() !== '') throw new Error(`qemu-io in ${domain} said: ${out.trim()}`);
}

/** Waits until the set's point (default 0) is no longer running, and returns the set. */
export async function settled(t: TestCore, domain: string, setId: string, point = 0, timeoutMs = 120_000): Promise<BackupSet> {
  await waitFor(
    () =>
      t.events.some((e) => {
        if (e.event !== 'backup.changed') return false;
        const d = e.data as BackupEvents['backup.changed'];
        return d.domain === domain && d.setId === setId && d.point === point && d.status !== 'running';
      }),
    { timeoutMs, what: `point ${point} of backup set ${setId} to settle` },
  );
  const set = (await t.client.call('backup.list', { hostId, domain })).find((s) => s.id === setId);
  if (!set) throw new Error(`set ${setId} is not listed`);
  return set;
}

/** `qemu-img compare` of two images (each with its chain): null when equal, else qemu-img's words. */
export async function compareImages(a: string, b: string): Promise<string | null> {
  try {
    await runTool('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', a, b]);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export { hostId };
