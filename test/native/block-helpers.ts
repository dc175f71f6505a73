// Helpers shared by the native tests 07-10 (not a test file itself): a disk's chain with its index
// attributes from live XML, asking virsh and qemu-img what libvirt and the images say,
// and waiting for libvirt 9.0.0 to forget a finished job.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { runTool } from '../../src/main/core/lab/images.ts';
import { diskChain, diskLayers, hasJob, libvirt, virsh, waitFor, type Domain, type LiveLayer } from '../lab/harness.ts';

export const MiB = 1024 * 1024;

/** The disk's chain in a live domain XML, active layer first, each layer with its index. */
export function liveLayers(domainXml: string, target = 'vda'): LiveLayer[] {
  return diskLayers(domainXml, target);
}

/** The index libvirt gives `file` in the disk's live chain ('vda[N]' names that layer). */
export function indexOf(layers: readonly LiveLayer[], file: string): number {
  const layer = layers.find((l) => l.file === file);
  assert.ok(layer, `${file} is not in the live chain ${JSON.stringify(layers)}`);
  assert.ok(Number.isInteger(layer.index) && layer.index > 0, `index ${layer.index}`);
  return layer.index;
}

/** The disk's chain as `virsh dumpxml` shows it (libvirt's own view, not the addon's). */
export async function virshChain(domain: string, target = 'vda'): Promise<string[]> {
  return diskChain(await virsh(['dumpxml', domain]), target);
}

/** The <disk> element of `target` in `virsh dumpxml`. */
export async function virshDiskXml(domain: string, target = 'vda'): Promise<string> {
  const xml = await virsh(['dumpxml', domain]);
  const disk = [...xml.matchAll(/<disk\b[\s\S]*?<\/disk>/g)].map((m) => m[0]).find((d) => d.includes(`<target dev='${target}'`));
  assert.ok(disk, `no disk ${target} in virsh dumpxml ${domain}`);
  return disk;
}

/** `virsh domstats DOM --block --backing`, parsed into key → value strings. */
export async function virshBlockStats(domain: string): Promise<Record<string, string>> {
  const out = await virsh(['domstats', domain, '--block', '--backing']);
  const stats: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^\s+([A-Za-z0-9_.]+)=(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) stats[m[1]] = m[2];
  }
  return stats;
}

export interface QemuImgInfo {
  'virtual-size': number;
  'actual-size': number;
  'backing-filename'?: string;
}

/** `qemu-img info -U` of one image (force-shared: QEMU may hold it). */
export async function qemuImgInfo(path: string): Promise<QemuImgInfo> {
  return JSON.parse(await runTool('qemu-img', ['info', '-U', '--output=json', path])) as QemuImgInfo;
}

/** Destination XML for blockCopy: a new qcow2 file. */
export function copyDestXml(file: string): string {
  return `<disk type='file'><source file='${file}'/><driver type='qcow2'/></disk>`;
}

/** The rejection of `promise` (fails when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected the call to reject');
}

/** Asserts that `err` is a LibvirtError with `code`, and returns it. */
export function assertLibvirtError(err: unknown, code: string): InstanceType<typeof libvirt.LibvirtError> {
  assert.ok(err instanceof libvirt.LibvirtError, `expected a LibvirtError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  return err;
}

/**
 * Waits until libvirt lists no job on the disk. libvirt 9.0.0 (Debian 12) may still list a job a
 * little after its completion event (a bug fixed in 9.1); polled,
 * and reported in the test's diagnostics when it lingered.
 */
export async function jobGone(t: TestContext, domain: Domain, after: string, disk = 'vda'): Promise<void> {
  const started = Date.now();
  if (!hasJob(await domain.blockJobInfo(disk))) return;
  await waitFor(async () => !hasJob(await domain.blockJobInfo(disk)), { timeoutMs: 15_000, what: `the job on ${disk} to go after ${after}` });
  t.diagnostic(`libvirt still listed the job ${Date.now() - started} ms after ${after} (libvirt 9.0.0 lingering-job bug?)`);
}

/** Polls virsh until the disk's chain is `expected` (the live XML follows an event closely). */
export async function waitForVirshChain(domain: string, expected: readonly string[], target = 'vda'): Promise<string[]> {
  let last: string[] = [];
  try {
    return await waitFor(
      async () => {
        last = await virshChain(domain, target);
        return JSON.stringify(last) === JSON.stringify(expected) ? last : null;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: `the chain of ${target} to become ${JSON.stringify(expected)}` },
    );
  } catch (err) {
    assert.deepEqual(last, expected, String(err));
    throw err;
  }
}
