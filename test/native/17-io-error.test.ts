// IO_ERROR_REASON for real: a guest (test/lab/guest.ts: Debian's kernel and busybox, booted
// directly under TCG) writes to a disk whose image lives on a 1 MiB tmpfs until the filesystem is
// full. QEMU stops the guest on ENOSPC (libvirt's default error policy), and the facade's
// onIoError reports it with libvirt's action and QEMU's reason.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTraversable, runTool } from '../../src/main/core/lab/images.ts';
import { LibvirtConnection } from '../../src/main/libvirt/connection.ts';
import type { IoErrorNotice } from '../../src/main/libvirt/types.ts';
import { guestDomainXml, guestImages, type GuestImages } from '../lab/guest.ts';
import { libvirt, TEST_URI, waitFor, type Connection } from '../lab/harness.ts';

let images: GuestImages | null = null;
let unavailable: string | null = process.getuid?.() === 0 ? null : 'mounting a tmpfs needs root';
if (!unavailable) {
  try {
    images = await guestImages();
  } catch (err) {
    unavailable = `the writing guest cannot be built here: ${err instanceof Error ? err.message : String(err)}`;
  }
}

describe(`IO_ERROR_REASON from a guest filling its disk's filesystem on ${TEST_URI}`, { timeout: 360_000, skip: unavailable ?? false }, () => {
  let conn: Connection;
  let facade: LibvirtConnection;
  let work: string;
  let mnt: string;
  let mounted = false;
  const notices: IoErrorNotice[] = [];

  before(async () => {
    conn = await libvirt.open(TEST_URI);
    facade = await LibvirtConnection.open(TEST_URI);
    await facade.onIoError((n) => notices.push(n));
    // libvirtd (root) writes the serial log; QEMU (libvirt-qemu) must reach the disk.
    work = await mkdtemp(join(tmpdir(), 'strata-native-ioerror-'));
    await makeTraversable(work);
    // Mounted before the domain starts: a mount made later does not reach QEMU's mount namespace.
    mnt = join(work, 'small');
    await mkdir(mnt);
    await runTool('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0711', 'tmpfs', mnt]);
    mounted = true;
  });

  after(async () => {
    // The domain goes with the connection that started it (AUTODESTROY), before the mount.
    await conn?.close();
    await facade?.close();
    if (mounted) await runTool('umount', [mnt]).catch(() => runTool('umount', ['-l', mnt]));
    if (mnt) await rmdir(mnt).catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('the guest is paused and onIoError says pause / enospc for its disk', async () => {
    const name = `strata-native-ioerror-${process.pid}-${randomBytes(3).toString('hex')}`;
    const disk = join(mnt, 'disk.qcow2');
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
    assert.ok(images);
    // 16,384 records of 4 KiB are 64 MiB: far more than the 1 MiB filesystem holds.
    await conn.createXML(
      guestDomainXml({ name, images, diskPath: disk, serialLog: join(work, 'serial.log'), records: 16_384 }),
      libvirt.VIR_DOMAIN_START_AUTODESTROY,
    );
    const notice = await waitFor(() => notices.find((n) => n.domain === name), { timeoutMs: 300_000, intervalMs: 200, what: `IO_ERROR_REASON of ${name}` });
    assert.equal(notice.action, 'pause');
    assert.equal(notice.reason, 'enospc');
    assert.equal(notice.srcPath, disk);
    assert.equal(notice.devAlias, 'virtio-disk0');
    assert.equal(await facade.domainState(name), 'paused');
  });
});
