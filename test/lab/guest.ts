// A guest that writes while block jobs run: Debian's cloud kernel and busybox-static, booted by
// libvirt's direct kernel boot (TCG, no network) on a lab qcow2 chain. Its init writes numbered,
// fsync'd 4 KiB records to /dev/vda, record N at offset N*4096, and reports every hundredth on
// the serial port, so a test knows which records the guest was told are durable.
//
// The kernel and initramfs are built from Debian packages at the first run and cached under
// /var/tmp, keyed by the package versions: later runs (and a new kernel package) need no rebuild
// by hand. Building needs `apt-get update` done once and a reachable Debian mirror.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { escapeXml } from '../../src/main/libvirt/xml.ts';
import { createBackingChain, makeTraversable, runTool, type BackingChain, type BackingChainOptions } from '../../src/main/core/lab/images.ts';
import { LAB_MARKER, removeLabDir } from '../../src/main/core/lab/lab.ts';
import { LAB_ROOT, uniqueLabName, waitFor, type Connection, type Domain } from './harness.ts';

export const RECORD_BYTES = 4096;
const VIR_DOMAIN_START_AUTODESTROY = 2;
const MAGIC = 'STRATAREC';
const TRAILER = 'STRATAEND';
const FILL_BYTES = 4000;
/** Bumped when the init script changes, so a cached initramfs of an older script is not used. */
const INIT_VERSION = 1;
const CACHE_ROOT = '/var/tmp/strata-guest';
// The order the cloud kernel's virtio modules load in: any other fails on unknown symbols.
const MODULES = ['virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci', 'virtio_blk'];

/**
 * The record's check value, as the guest's shell computes it: a hash of N in 32-bit arithmetic
 * (busybox ash's arithmetic is 64-bit), so a record at the wrong offset or with a garbled header
 * does not pass.
 */
export function recordCheck(n: number): number {
  return Number((((BigInt(n) ^ 0x5bd1e995n) * 16777619n) & 0xffffffffn) % 1000000000n);
}

/** The exact 4 KiB the guest writes as record N. */
export function expectedRecord(n: number): Buffer {
  const header = `${MAGIC} ${String(n).padStart(10, '0')} ${String(recordCheck(n)).padStart(10, '0')}`.padEnd(63, ' ') + '\n';
  const trailer = `\n${TRAILER} ${String(n).padStart(10, '0')}`.padEnd(31, ' ') + '\n';
  return Buffer.from(header + 'f'.repeat(FILL_BYTES) + trailer, 'latin1');
}

// ash: no forks but dd per record; `$((...))` does the check value.
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec >/dev/ttyS0 2>&1
for m in ${MODULES.join(' ')}; do insmod /modules/$m.ko || echo "STRATA-GUEST insmod $m failed"; done
n=0
while [ ! -b /dev/vda ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done
[ -b /dev/vda ] || { echo "STRATA-GUEST no /dev/vda"; poweroff -f; }
max=$(sed -n 's/.*strata.records=\\([0-9]*\\).*/\\1/p' /proc/cmdline)
head -c ${FILL_BYTES} /dev/zero | tr '\\000' f > /fill
F=$(cat /fill)
echo "STRATA-GUEST writing $max"
i=0
while [ $i -lt $max ]; do
  s=$(( ((i ^ 0x5bd1e995) * 16777619) & 0xffffffff ))
  s=$(( s % 1000000000 ))
  printf 'STRATAREC %010d %010d%32s\\n%s\\nSTRATAEND %010d%10s\\n' $i $s '' "$F" $i '' > /r
  dd if=/r of=/dev/vda bs=${RECORD_BYTES} seek=$i count=1 conv=fsync 2>/dev/null || echo "STRATA-GUEST write $i failed"
  i=$((i+1))
  [ $((i % 100)) -eq 0 ] && echo "STRATA-GUEST written $i"
done
echo "STRATA-GUEST done $i"
while :; do sleep 3600; done
`;

export interface GuestImages {
  kernel: string;
  initrd: string;
  /** Package versions the images were made from. */
  key: string;
}

function shell(command: string, cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('sh', ['-c', command], { cwd, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`\`${command}\` in ${cwd} failed: ${String(stderr).trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

async function packageVersion(pkg: string): Promise<string> {
  const out = await runTool('apt-cache', ['show', '--no-all-versions', pkg]);
  const version = /^Version: (.+)$/m.exec(out)?.[1];
  if (!version) throw new Error(`apt-cache show ${pkg} names no version: run apt-get update first`);
  return version;
}

/** The kernel package linux-image-cloud-amd64 depends on, e.g. linux-image-6.1.0-57-cloud-amd64. */
async function cloudKernelPackage(): Promise<string> {
  const out = await runTool('apt-cache', ['depends', 'linux-image-cloud-amd64']);
  const pkg = /Depends: (linux-image-[^\s]+)/.exec(out)?.[1];
  if (!pkg) throw new Error(`apt-cache depends linux-image-cloud-amd64 names no kernel package:\n${out}`);
  return pkg;
}

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

/**
 * The guest's kernel and initramfs, built once per package versions. Rejects with the command
 * that failed and its output when they cannot be built here.
 */
export async function guestImages(): Promise<GuestImages> {
  const kernelPkg = await cloudKernelPackage();
  const key = `${kernelPkg}_${await packageVersion(kernelPkg)}+busybox-static_${await packageVersion('busybox-static')}+init${INIT_VERSION}`.replace(/[^A-Za-z0-9._+-]/g, '_');
  const dir = join(CACHE_ROOT, key);
  const images = { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.cpio'), key };
  if ((await exists(images.kernel)) && (await exists(images.initrd))) return images;

  await mkdir(CACHE_ROOT, { recursive: true });
  // QEMU runs as libvirt-qemu: the cache must be readable by it.
  await chmod(CACHE_ROOT, 0o755);
  const work = await mkdtemp(join(CACHE_ROOT, 'build-'));
  try {
    await shell(`apt-get download ${kernelPkg} busybox-static`, work);
    const debs = await readdir(work);
    const kernelDeb = debs.find((f) => f.startsWith(`${kernelPkg}_`));
    const busyboxDeb = debs.find((f) => f.startsWith('busybox-static_'));
    if (!kernelDeb || !busyboxDeb) throw new Error(`apt-get download left ${debs.join(', ')} in ${work}`);
    await runTool('dpkg', ['-x', join(work, kernelDeb), join(work, 'kernel')]);
    await runTool('dpkg', ['-x', join(work, busyboxDeb), join(work, 'busybox')]);
    const boot = join(work, 'kernel', 'boot');
    const vmlinuz = (await readdir(boot)).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new Error(`${kernelDeb} has no boot/vmlinuz-*`);
    const release = vmlinuz.slice('vmlinuz-'.length);

    const root = join(work, 'root');
    await mkdir(join(root, 'bin'), { recursive: true });
    await mkdir(join(root, 'modules'));
    const busybox = join(root, 'bin', 'busybox');
    await copyFile(join(work, 'busybox', 'bin', 'busybox'), busybox);
    await chmod(busybox, 0o755);
    const moduleDir = join(work, 'kernel', 'lib', 'modules', release, 'kernel');
    const found = (await shell(`find . -name '*.ko' -o -name '*.ko.xz'`, moduleDir)).split('\n').filter(Boolean);
    for (const m of MODULES) {
      const file = found.find((f) => f.endsWith(`/${m}.ko`));
      if (!file) throw new Error(`${kernelDeb} has no uncompressed ${m}.ko (found: ${found.filter((f) => f.includes(m)).join(', ') || 'none'})`);
      await copyFile(join(moduleDir, file), join(root, 'modules', `${m}.ko`));
    }
    await writeFile(join(root, 'init'), INIT, { mode: 0o755 });
    // cpio is not installed on these machines; busybox's applet makes the newc archive.
    await shell(`${busybox} find . | ${busybox} cpio -o -H newc > ../initrd.cpio`, root);

    const staged = await mkdtemp(join(CACHE_ROOT, 'staged-'));
    await copyFile(join(boot, vmlinuz), join(staged, 'vmlinuz'));
    await copyFile(join(work, 'initrd.cpio'), join(staged, 'initrd.cpio'));
    for (const f of ['vmlinuz', 'initrd.cpio']) await chmod(join(staged, f), 0o644);
    await chmod(staged, 0o755);
    // Another run may have built the same key meanwhile: either copy is the same.
    await rename(staged, dir).catch(async () => rm(staged, { recursive: true, force: true }));
    return images;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface GuestXmlOptions {
  name: string;
  images: GuestImages;
  diskPath: string;
  serialLog: string;
  /** How many records the guest writes before it idles. */
  records: number;
}

/** A transient TCG domain booting the guest's kernel directly, its disk the chain's active layer. */
export function guestDomainXml(o: GuestXmlOptions): string {
  return `<domain type='qemu'>
  <name>${escapeXml(o.name)}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${escapeXml(o.images.kernel)}</kernel>
    <initrd>${escapeXml(o.images.initrd)}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 strata.records=${o.records}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${escapeXml(o.diskPath)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='${escapeXml(o.serialLog)}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/** What the guest has said on its serial port so far. */
export async function serialReport(serialLog: string): Promise<{ written: number; done: boolean; errors: string[]; text: string }> {
  const text = await readFile(serialLog, 'latin1').catch(() => '');
  let written = 0;
  for (const m of text.matchAll(/STRATA-GUEST written (\d+)/g)) written = Math.max(written, Number(m[1]));
  const errors = [...text.matchAll(/STRATA-GUEST (insmod \S+ failed|no \/dev\/vda|write \d+ failed)/g)].map((m) => m[1]!);
  return { written, done: /STRATA-GUEST done/.test(text), errors, text };
}

export interface RecordCheck {
  /** Records 0..reported-1 the guest said were durable, each found intact. */
  intact: number;
  /** Records found intact beyond the reported ones (written after the last report). */
  beyond: number;
  /** Offsets of reported records that are missing or damaged. */
  bad: { n: number; found: string }[];
  /** The first byte offset after the last intact record. */
  writtenEnd: number;
}

/** Checks a raw image of the disk: every reported record intact, and how far the writes went. */
export function checkRecords(raw: Buffer, reported: number): RecordCheck {
  const bad: RecordCheck['bad'] = [];
  const intactAt = (n: number): boolean => raw.subarray(n * RECORD_BYTES, (n + 1) * RECORD_BYTES).equals(expectedRecord(n));
  for (let n = 0; n < reported; n++) {
    if (!intactAt(n)) bad.push({ n, found: JSON.stringify(raw.subarray(n * RECORD_BYTES, n * RECORD_BYTES + 40).toString('latin1')) });
  }
  let next = reported;
  while ((next + 1) * RECORD_BYTES <= raw.length && intactAt(next)) next++;
  return { intact: reported - bad.length, beyond: next - reported, bad, writtenEnd: next * RECORD_BYTES };
}

/** The guest's images, or why they cannot be built here: a test file skips with that reason. */
export async function guestImagesOrWhyNot(): Promise<{ images: GuestImages; unavailable: null } | { images: null; unavailable: string }> {
  try {
    return { images: await guestImages(), unavailable: null };
  } catch (err) {
    const unavailable = `the writing guest cannot be built here: ${err instanceof Error ? err.message : String(err)}`;
    console.log(`SKIPPED: ${unavailable}`);
    return { images: null, unavailable };
  }
}

export interface WritingGuest {
  name: string;
  /** The lab folder: the chain, the serial log, and whatever the test puts there. */
  dir: string;
  chain: BackingChain;
  domain: Domain;
  /** Records the guest has reported durable so far; fails the test if it reported an error. */
  written(): Promise<number>;
  /** Resolves once the guest has reported `records` durable, however slowly the machine lets it write. */
  writtenAtLeast(records: number, what: string): Promise<number>;
}

export interface WritingGuestOptions {
  images: GuestImages;
  /** Named in the domain's name. */
  tag: string;
  /** The chain under the guest; its active layer is the guest's disk. */
  layout: Omit<BackingChainOptions, 'dir'>;
  /** How many records the guest writes before it idles. */
  records: number;
}

/**
 * A lab folder with a chain, and the writing guest booted on its active layer (transient,
 * autodestroyed with `conn`); the domain is destroyed and the folder removed when the test ends.
 */
export async function startWritingGuest(ctx: TestContext, conn: Connection, o: WritingGuestOptions): Promise<WritingGuest> {
  const name = uniqueLabName(o.tag);
  const dir = join(LAB_ROOT, name);
  await makeTraversable(LAB_ROOT);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, LAB_MARKER), `${name}\n`);
  let domain: Domain | null = null;
  ctx.after(async () => {
    await domain?.destroy().catch(() => undefined);
    await removeLabDir(dir);
  });
  const chain = await createBackingChain({ ...o.layout, dir });
  const serialLog = join(dir, 'serial.log');
  domain = await conn.createXML(guestDomainXml({ name, images: o.images, diskPath: chain.layers.at(-1)!, serialLog, records: o.records }), VIR_DOMAIN_START_AUTODESTROY);
  const written = async (): Promise<number> => {
    const report = await serialReport(serialLog);
    assert.deepEqual(report.errors, [], report.text.slice(-2000));
    return report.written;
  };
  const writtenAtLeast = (records: number, what: string): Promise<number> =>
    waitFor(async () => {
      const n = await written();
      return n >= records ? n : 0;
    }, { timeoutMs: 120_000, intervalMs: 100, what });
  return { name, dir, chain, domain, written, writtenAtLeast };
}
