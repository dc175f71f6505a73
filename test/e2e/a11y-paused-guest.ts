// A guest that QEMU pauses on an I/O error within a second or two, for the window's paused-guest
// banner: a raw disk on a tiny tmpfs that is full, and a 512-byte boot sector that SeaBIOS loads
// from that disk and that writes one sector through the BIOS (int 13h) 1008 sectors further on,
// where the sparse file holds no page yet. The tmpfs cannot give one, QEMU's write fails with
// ENOSPC and libvirt's default error policy pauses the guest: the same io-error-reason event a
// real guest filling its disk raises, without booting a kernel (the writing guest of the fault
// tests takes about two minutes to fill a file system under TCG).
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, open, rm, rmdir, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { escapeXml } from '../../src/main/libvirt/xml.ts';
import { libvirt, uniqueLabName, type Connection } from '../lab/harness.ts';

const run = (cmd: string, args: string[]): Promise<void> =>
  new Promise((resolve, reject) => execFile(cmd, args, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve())));

/** Why the paused guest cannot be made here, or null. */
export function pausedGuestMissing(): string | null {
  return process.getuid?.() === 0 ? null : 'mounting the tmpfs the paused guest writes to needs root';
}

// Real-mode code at 0x7c00, the boot drive in DL as the BIOS left it:
//   xor ax,ax / mov es,ax / mov bx,0x7c00   the buffer: this sector itself
//   mov ax,0x0301                            AH=3 write, AL=1 sector
//   mov cx,0x0101 / mov dh,0                 cylinder 1, sector 1, head 0: LBA 1008 at 16 heads x 63 sectors
//   int 0x13
//   cli / hlt / jmp hlt                      nothing more, should it ever be resumed
const BOOT_CODE = [0x31, 0xc0, 0x8e, 0xc0, 0xbb, 0x00, 0x7c, 0xb8, 0x01, 0x03, 0xb9, 0x01, 0x01, 0xb6, 0x00, 0xcd, 0x13, 0xfa, 0xf4, 0xeb, 0xfd];

function bootSector(): Buffer {
  const sector = Buffer.alloc(512);
  Buffer.from(BOOT_CODE).copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

function domainXml(name: string, disk: string): string {
  return `<domain type='qemu'>
  <name>${escapeXml(name)}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='${escapeXml(disk)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

export interface PausedGuest {
  name: string;
  /** The disk's file, on the full tmpfs. */
  disk: string;
}

/**
 * Starts the guest on `conn` (AUTODESTROY) and returns once it runs; QEMU pauses it a moment
 * later. The domain is destroyed, the tmpfs unmounted and its folder removed after the test.
 */
export async function startPausedGuest(ctx: TestContext, conn: Connection, tag = 'paused'): Promise<PausedGuest> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-test-paused-'));
  // QEMU runs as libvirt-qemu: it must reach the disk through these folders.
  await chmod(dir, 0o755);
  const fs = join(dir, 'fs');
  await mkdir(fs);
  // Mounted before the domain starts: a mount made later does not reach QEMU's mount namespace.
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', fs]);
  let domain: { destroy(): Promise<unknown> } | null = null;
  ctx.after(async () => {
    await domain?.destroy().catch(() => undefined);
    await run('umount', [fs]).catch(() => run('umount', ['-l', fs]));
    await rmdir(fs).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  const disk = join(fs, 'disk.raw');
  const file = await open(disk, 'w');
  try {
    await file.write(bootSector(), 0, 512, 0);
    await file.truncate(64 * 1024 * 1024);
  } finally {
    await file.close();
  }
  const left = await statfs(fs);
  await writeFile(join(fs, 'filler'), Buffer.alloc(left.bavail * left.bsize, 0x11));
  const name = uniqueLabName(tag);
  domain = await conn.createXML(domainXml(name, disk), libvirt.VIR_DOMAIN_START_AUTODESTROY);
  return { name, disk };
}
