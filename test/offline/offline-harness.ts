// Real qcow2 chains for the offline engine's tests: layers filled with `qemu-io write -P`
// patterns, a raw picture of the guest-visible disk taken before a job, and checks that no
// qemu-storage-daemon outlives a test.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { LAB_MARKER } from '../../src/main/core/lab/lab.ts';
import { makeTraversable, MiB, runTool } from '../../src/main/core/lab/images.ts';
import { checkImage, readImageChain } from '../../src/main/core/offline/image-tool.ts';
import { sessionQemuUser } from '../../src/main/core/hosts/session-user.ts';

export { MiB };

// The lab's naming (strata-test-<pid>-<run>-<n>-<tag>, under the lab root), so the lab's sweep
// removes what a killed run left; not imported from the lab harness, which loads the libvirt addon
// that these tests do not need.
export const LAB_ROOT = join(tmpdir(), 'strata-lab');
const RUN_TOKEN = randomBytes(3).toString('hex');
let counter = 0;
export function uniqueLabName(tag: string): string {
  counter += 1;
  return `strata-test-${process.pid}-${RUN_TOKEN}-${counter}-${tag.replace(/[^a-zA-Z0-9_-]/g, '-').slice(0, 40)}`;
}

export interface TestChain {
  dir: string;
  /** Base first. */
  layers: string[];
  active: string;
  /** A raw image of what the guest saw before the job. */
  reference: string;
}

/** One write per layer: [offset, length] in bytes, pattern 0xa0 + 0x11·i. */
export type LayerWrites = [number, number][][];

const defaultWrites: LayerWrites = [
  [[0, 16 * MiB]],
  [[1 * MiB, 1 * MiB], [16 * MiB, 4 * MiB]],
  [[2 * MiB, 1 * MiB], [20 * MiB, 4 * MiB]],
];

/**
 * A folder under the lab root (with the lab's marker, so a later sweep can remove it), removed after
 * the test. A test that failed mid-job (or stopped Strata, which leaves a job's daemon running on
 * purpose) could leave a qemu-storage-daemon on its images: it is killed first.
 */
export async function useLabDir(t: TestContext, tag: string): Promise<string> {
  const dir = join(LAB_ROOT, uniqueLabName(tag));
  // On a session instance QEMU (and qemu-storage-daemon) runs as this user, who may keep the images in a private folder.
  await makeTraversable(dir, sessionQemuUser(TEST_URI));
  await writeFile(join(dir, LAB_MARKER), `${dir}\n`);
  t.after(async () => {
    for (const pid of await daemonsUnder(dir)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A chain of `writes.length` qcow2 layers linked by relative backing names, as people make them. */
export async function makeChain(dir: string, options: { writes?: LayerWrites; virtualSize?: number } = {}): Promise<TestChain> {
  const writes = options.writes ?? defaultWrites;
  const size = options.virtualSize ?? 64 * MiB;
  const layers: string[] = [];
  for (let i = 0; i < writes.length; i++) {
    const name = i === 0 ? 'base.qcow2' : `layer${i}.qcow2`;
    const path = join(dir, name);
    const backing = i === 0 ? [] : ['-b', layers[i - 1]!.slice(dir.length + 1), '-F', 'qcow2'];
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', ...backing, path, String(size)]);
    const pattern = (0xa0 + i * 0x11) & 0xff;
    const cmds = writes[i]!.flatMap(([off, len]) => ['-c', `write -P 0x${pattern.toString(16)} ${off} ${len}`]);
    await runTool('qemu-io', ['-f', 'qcow2', ...cmds, path]);
    layers.push(path);
  }
  const active = layers[layers.length - 1]!;
  const reference = join(dir, 'reference.raw');
  await runTool('qemu-img', ['convert', '-O', 'raw', active, reference]);
  return { dir, layers, active, reference };
}

/** `qemu-img compare` of the chain under `image` with the reference: throws on any difference. */
export async function assertSameData(chain: TestChain, image: string, format = 'qcow2'): Promise<void> {
  await runTool('qemu-img', ['compare', '-f', 'raw', '-F', format, chain.reference, image]);
}

/** Every image of the chain under `image` passes `qemu-img check`; returns the chain's paths, active first. */
export async function assertChainClean(image: string): Promise<string[]> {
  const layers = await readImageChain(image);
  for (const l of layers) {
    const r = await checkImage(l.path, l.format);
    if (!r.clean) throw new Error(`${l.path} is not clean: ${r.detail}`);
  }
  return layers.map((l) => l.path);
}

/** Pids of every qemu-storage-daemon whose command line names something under `dir`. */
export async function daemonsUnder(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('qemu-storage-daemon') && cmdline.includes(dir)) {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
      if (stat && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') out.push(Number(entry));
    }
  }
  return out;
}

export const TEST_URI = process.env['STRATA_TEST_URI'] || 'qemu:///system';

export function virsh(args: readonly string[]): Promise<string> {
  return runTool('virsh', ['-c', TEST_URI, ...args], 60_000);
}

/** virsh's own failure, as a test reads it (the message libvirt gave). */
export async function virshFails(args: readonly string[]): Promise<string> {
  try {
    await virsh(args);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  throw new Error(`virsh ${args.join(' ')} succeeded`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Persistent (defined) test domains whose test process is gone are undefined: the lab's sweep
 * destroys only running ones, and a shut-off domain is what these tests need.
 */
export async function sweepStaleDefinedDomains(): Promise<void> {
  const names = (await virsh(['list', '--all', '--name'])).split('\n').map((n) => n.trim());
  for (const name of names) {
    const m = /^strata-test-(\d+)-[0-9a-f]+-\d+-offline/.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    await virsh(['destroy', name]).catch(() => undefined);
    await virsh(['undefine', '--snapshots-metadata', '--checkpoints-metadata', name]).catch(() => undefined);
  }
}

/** A shut-off, persistent domain on `diskPath` (a qcow2 image), undefined after the test. */
export async function useDefinedDomain(t: TestContext, dir: string, diskPath: string, tag: string): Promise<string> {
  const name = uniqueLabName(`offline-${tag}`);
  const xml = `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${diskPath}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
`;
  const file = join(dir, `${name}.xml`);
  await writeFile(file, xml);
  await virsh(['define', file]);
  t.after(async () => {
    await virsh(['destroy', name]).catch(() => undefined);
    await virsh(['undefine', '--snapshots-metadata', '--checkpoints-metadata', name]);
  });
  return name;
}

/**
 * The definition through virsh (virDomainGetXMLDesc INACTIVE|SECURE, virDomainDefineXML): the
 * addon has no virDomainDefineXML yet, so the test reaches libvirt the way a user would.
 */
export function virshDefinition(dir: string): { inactiveXml(domain: string): Promise<string>; define(xml: string): Promise<void> } {
  return {
    inactiveXml: (domain) => virsh(['dumpxml', '--inactive', '--security-info', domain]),
    define: async (xml) => {
      const file = join(dir, `define-${Date.now()}.xml`);
      await writeFile(file, xml);
      await virsh(['define', file]);
    },
  };
}
