// The preflight: the checks in an operation's preview that decide whether the job can succeed.
// Where it writes, is there room (with a margin), may QEMU's user write there, and did the latest
// chain check find a layer it touches broken? Cheap checks only (stat, statfs, the mount table);
// qemu-img runs just for a copy's measure, and its answer is kept while the layers are unchanged.
import type { Operation } from '../../../shared/contract.ts';
import type { Finding, HostCapabilities, Preflight } from '../../../shared/health.ts';
import type { ChainPreview, Layer } from '../../../shared/model.ts';
import { allocatedBytes, blockedFolder, fileAccess, fileStamp, groupsOf, modeText, mountFacts } from './file-access.ts';
import { bytesText, finding } from './findings.ts';
import { knownProblems } from './chain-check.ts';
import { measureCopy } from './qemu-img.ts';
import { likelyDenial } from './security-model.ts';
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

export interface PreflightContext {
  hostLabel: string;
  local: boolean;
  capabilities: HostCapabilities;
}

const MiB = 1024 * 1024;

/** Room kept free beyond the estimate: 5 % of it, at least 32 MiB (QEMU's metadata, the guest's own writes meanwhile). */
export const marginFor = (needed: number): number => Math.max(32 * MiB, Math.ceil(needed * 0.05));

interface Plan {
  target: string;
  targetLayer: Layer | null;
  /** Layers whose data moves into the target (pull, commit). */
  moving: Layer[];
}

function positionOf(chain: readonly Layer[], index: number | undefined, fallback: number): number {
  if (index === undefined) return fallback;
  const at = chain.findIndex((l) => l.index === index);
  return at < 0 ? fallback : at;
}

function planOf(preview: ChainPreview, op: Operation): Plan | null {
  const chain = preview.before;
  switch (op.kind) {
    case 'pull':
      return chain[0] ? { target: chain[0].path, targetLayer: chain[0], moving: preview.unused } : null;
    case 'commit': {
      const top = positionOf(chain, op.top, 0);
      const base = positionOf(chain, op.base, chain.length - 1);
      const layer = chain[base];
      return layer ? { target: layer.path, targetLayer: layer, moving: chain.slice(top, base) } : null;
    }
    case 'copy':
      return { target: op.destination, targetLayer: null, moving: [] };
    case 'snapshot':
      return null;
  }
}

// What a layer holds: on this machine its allocated blocks, elsewhere libvirt's size of the file.
function dataOf(layer: Layer, local: boolean): number | null {
  const bytes = local ? allocatedBytes(layer.path) : (layer.sizes?.physical ?? null);
  if (bytes === null) return null;
  return layer.sizes ? Math.min(bytes, layer.sizes.capacity) : bytes;
}

const measured = new Map<string, number>();
const measuredLimit = 1000;

async function measureCached(chain: readonly Layer[], format: string): Promise<number> {
  const stamps = chain.map((l) => fileStamp(l.path) ?? 'missing');
  const key = `${format} ${chain.map((l, i) => `${l.path}@${stamps[i]}`).join(' ')}`;
  const cached = measured.get(key);
  if (cached !== undefined) return cached;
  const active = chain[0]!;
  const required = await measureCopy(active.path, active.format, format);
  if (measured.size >= measuredLimit) measured.delete(measured.keys().next().value as string);
  measured.set(key, required);
  return required;
}

interface Need {
  bytes: number | null;
  estimate: string;
}

async function needOf(preview: ChainPreview, op: Operation, plan: Plan, local: boolean): Promise<Need> {
  const chain = preview.before;
  if (op.kind === 'copy') {
    if (!local) return { bytes: null, estimate: 'the images are on another machine: qemu-img cannot measure them from here' };
    const existing = op.reuseExisting ? (allocatedBytes(op.destination) ?? 0) : 0;
    if (op.shallow) {
      const data = chain[0] ? dataOf(chain[0], true) : null;
      return { bytes: data === null ? null : Math.max(0, data - existing), estimate: 'the data the active layer holds (a shallow copy takes only it)' };
    }
    if (!chain[0] || !existsSync(chain[0].path)) return { bytes: null, estimate: 'the active layer cannot be read on this machine' };
    try {
      const required = await measureCached(chain, op.format);
      return { bytes: Math.max(0, required - existing), estimate: `qemu-img measure of the whole chain as ${op.format}${existing ? ', less what the existing file already takes' : ''}` };
    } catch (err) {
      return { bytes: null, estimate: `qemu-img measure failed: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  let moving = 0;
  for (const layer of plan.moving) {
    const data = dataOf(layer, local);
    if (data === null) return { bytes: null, estimate: 'the sizes of the layers whose data moves are not known here' };
    moving += data;
  }
  const target = plan.targetLayer;
  const held = target ? dataOf(target, local) : null;
  const capacity = target?.sizes?.capacity ?? null;
  // The target cannot grow past its virtual size: clusters it already holds are overwritten in place.
  const room = capacity !== null && held !== null ? Math.max(0, capacity - held) : null;
  const bytes = room === null ? moving : Math.min(moving, room);
  return {
    bytes,
    estimate:
      `the data allocated in the ${plan.moving.length} layer${plan.moving.length === 1 ? '' : 's'} whose data moves` +
      (room === null ? '' : ", at most what the target's virtual size leaves unallocated") +
      '; an upper bound, since clusters the target already holds at the same places are overwritten, not added',
  };
}

/** The preflight of `op` on the chain its preview describes; undefined for a snapshot. */
export async function preflight(preview: ChainPreview, op: Operation, ctx: PreflightContext): Promise<Preflight | undefined> {
  const plan = planOf(preview, op);
  if (!plan) return undefined;
  const findings: Finding[] = [];
  const need = await needOf(preview, op, plan, ctx.local);
  let freeBytes: number | null = null;
  let marginBytes: number | null = null;

  if (!ctx.local) {
    findings.push(finding('info', 'remote', `${plan.target} is on ${ctx.hostLabel}: Strata cannot see its free space or permissions from here.`, 'Check the room on that host before a large job.'));
  } else {
    const mount = mountFacts(plan.target);
    const folder = op.kind === 'copy' ? dirname(plan.target) : null;
    if (folder !== null && !isFolder(folder)) {
      findings.push(finding('error', 'no-folder', `The folder ${folder} does not exist.`, 'Create it, or choose a destination in an existing folder.'));
    } else if (mount) {
      freeBytes = mount.freeBytes;
      if (mount.readOnly) findings.push(finding('error', 'read-only-mount', `${plan.target} is on the read-only mount ${mount.mountPoint}: the job cannot write there.`, `Remount ${mount.mountPoint} read-write, or choose another place.`));
    }
    findings.push(...writability(plan, op, ctx));
    if (need.bytes !== null && freeBytes !== null) {
      marginBytes = marginFor(need.bytes);
      const numbers = `needs about ${bytesText(need.bytes)}, ${bytesText(freeBytes)} free on ${mount?.mountPoint ?? 'its file system'}`;
      if (need.bytes > freeBytes) {
        findings.push(finding('error', 'no-space', `Not enough room where the job writes: it ${numbers}; QEMU would pause the guest or fail the job when the file system fills.`, `Free at least ${bytesText(need.bytes - freeBytes + marginBytes)} there, or ${op.kind === 'copy' ? 'copy to a file system with more room' : 'move the layer to a larger file system first'}.`));
      } else if (need.bytes + marginBytes > freeBytes) {
        findings.push(finding('warning', 'low-space', `Little room to spare where the job writes: it ${numbers}, less than the ${bytesText(marginBytes)} margin Strata keeps.`, 'Free some space first, or confirm to run it anyway.'));
      }
    }
  }
  // The latest chain check's problems in a layer the job reads or writes, if the file is unchanged.
  for (const layer of preview.before) {
    for (const f of knownProblems(layer.path)) {
      if (f.code === 'corrupt' || f.code === 'corrupt-flag' || f.code === 'unreadable') findings.push({ ...f, severity: 'error' });
      else if (f.code === 'backing-format-missing' || f.code === 'bitmap-inconsistent') findings.push(f);
    }
  }
  const verdict = findings.some((f) => f.severity === 'error') ? 'refused' : findings.some((f) => f.code === 'low-space') ? 'at-risk' : 'ok';
  return { verdict, target: plan.target, neededBytes: need.bytes, estimate: need.estimate, freeBytes, marginBytes, findings };
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

// May QEMU's user write where the job writes? An existing layer must be writable by it, or become so
// when libvirt hands it over (DAC dynamic ownership gives QEMU the file, not write permission); a
// copy's new file is created by libvirt, but QEMU must be able to enter its folder.
function writability(plan: Plan, op: Operation, ctx: PreflightContext): Finding[] {
  const user = ctx.capabilities.qemuUser;
  if (!user) {
    const why = ctx.capabilities.problem ?? "libvirt does not say which user QEMU runs as";
    return [finding('info', 'permissions-unknown', `${why}: whether QEMU may write ${plan.target} was not judged.`, null)];
  }
  const who = `QEMU's user (${user.uid}:${user.gid})`;
  const cause = likelyDenial(ctx.capabilities.security);
  const confined = ctx.capabilities.security === 'apparmor' || ctx.capabilities.security === 'selinux';
  const out: Finding[] = [];
  if (op.kind === 'copy') {
    const blocked = isFolder(dirname(plan.target)) ? blockedFolder(plan.target, user, groupsOf(user)) : null;
    if (blocked) out.push(finding('error', 'folder-blocked', `${who} cannot enter ${blocked}, so QEMU cannot open the copy at ${plan.target}: the job would fail with "Permission denied".`, `Let it in (chmod o+x ${blocked}) or copy to a folder QEMU can reach, such as /var/lib/libvirt/images.`));
  } else if (op.kind === 'commit') {
    const access = fileAccess(plan.target, user);
    if (access?.blockedFolder) {
      out.push(finding('error', 'folder-blocked', `${who} cannot enter ${access.blockedFolder}, where ${plan.target} is: the commit would fail with "Permission denied".`, `Let it in: chmod o+x ${access.blockedFolder}.`));
    } else if (access && access.qemuCanWrite === false && (access.mode & 0o200) === 0) {
      out.push(
        finding(
          'error',
          'not-writable',
          `${who} cannot write ${plan.target} (owner ${access.ownerUid}:${access.ownerGid}, mode ${modeText(access.mode)}): the commit would fail with "Permission denied" (${cause}).`,
          `Give the owner write permission (chmod u+w ${plan.target}); libvirt then hands the file to QEMU when the job starts.`,
        ),
      );
    }
  }
  if (confined && op.kind === 'commit') {
    out.push(
      finding(
        'warning',
        `confined-${ctx.capabilities.security}`,
        ctx.capabilities.security === 'apparmor'
          ? `This host confines QEMU with AppArmor: libvirt 9.0 may not let QEMU write ${plan.target}, and the commit then fails with "Permission denied" even though the file's permissions allow it.`
          : `This host confines QEMU with SELinux: ${plan.target} must carry the domain's label (libvirt relabels the files it knows; one on NFS or labelled by hand may be refused).`,
        ctx.capabilities.security === 'apparmor' ? "If it is refused, add the file to the domain's AppArmor profile or commit with the domain shut down." : null,
      ),
    );
  }
  return out;
}
