// Practice qcow2 backing chains with real data in every layer, for lab domains (tests, and the
// app's scratch VM for newcomers). Plain Node: no electron, no shell. Tools run through execFile
// with an argument list, so paths with spaces or quotes are never interpreted.
import { execFile } from 'node:child_process';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { StrataError } from '../../../shared/errors.ts';
import type { QemuUser } from '../../../shared/health.ts';
import { allows, groupsOf } from '../health/file-access.ts';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export type LabErrorCode = 'TOOL_MISSING' | 'TOOL_FAILED' | 'BAD_OPTION' | 'NOT_TRAVERSABLE' | 'NOT_A_LAB_DIR';

/** What the user can do about each lab failure; the message says what failed. */
const hints: Record<LabErrorCode, string> = {
  TOOL_MISSING: 'Practice labs are made with qemu-img and qemu-io: install them, then try again.',
  TOOL_FAILED: "The tool's own words are above; check the lab folder's free space and permissions, or set STRATA_LAB_DIR to another folder.",
  BAD_OPTION: 'A practice lab needs an empty folder of its own and a chain that fits its disk: remove what is in the folder, or set STRATA_LAB_DIR to another one.',
  NOT_TRAVERSABLE: "Let QEMU's user enter that folder (chmod o+x), or set STRATA_LAB_DIR to a folder it can reach: for the system instance such as /var/lib/libvirt/images, for a session instance any folder of yours.",
  NOT_A_LAB_DIR: 'Strata removes only the folders it made for a lab; remove that one yourself if it is no longer needed.',
};

/**
 * Thrown for lab set-up problems: a missing tool, a bad option, a tool that failed. It crosses the
 * API as kind 'lab' with a hint, not as an internal error: these are the user's machine's
 * problems to fix, not Strata's bugs.
 */
export class LabError extends StrataError {
  override name = 'LabError';
  constructor(
    message: string,
    readonly code: LabErrorCode,
    options: { cause?: unknown } = {},
  ) {
    super('lab', message, { hint: hints[code], cause: options.cause });
  }
}

/** One `qemu-io write -P pattern offset length` made into a layer. */
export interface LayerWrite {
  /** Index in the chain: 0 is the base. */
  layer: number;
  path: string;
  pattern: number;
  offset: number;
  length: number;
}

export interface BackingChainOptions {
  /** Directory for the images; created if missing, and made traversable for QEMU (see below). */
  dir: string;
  /** Number of layers, base included (default 3). */
  layers?: number;
  /** Virtual size of every layer in bytes (default 1 GiB). */
  virtualSize?: number;
  /** Bytes of data written at offset 0 of the base (default 64 MiB). */
  baseDataBytes?: number;
  /** Bytes of data written in each overlay, each at its own offset after the base's data (default 4 MiB). */
  overlayDataBytes?: number;
  /** File name of layer i (default `layer-0-base.qcow2`, `layer-1.qcow2`, …). */
  fileName?: (index: number, count: number) => string;
  /** The user QEMU runs as, as libvirt says (see makeTraversable); null or absent: assume another user. */
  qemuUser?: QemuUser | null;
}

export interface BackingChain {
  /** Image paths from the base (index 0) to the active layer (last). */
  layers: string[];
  /** What was written where, layer by layer, to check data after a block job. */
  writes: LayerWrite[];
  virtualSize: number;
}

const SECTOR = 512;

/** The distinct byte pattern of layer i: 0xa0 for the base, then 0xb1, 0xc2, … */
export function layerPattern(index: number): number {
  return (0xa0 + index * 0x11) & 0xff;
}

function defaultFileName(index: number): string {
  return index === 0 ? 'layer-0-base.qcow2' : `layer-${index}.qcow2`;
}

function checkSize(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min || value % SECTOR !== 0) {
    throw new LabError(`${name} must be a whole number of 512-byte sectors, at least ${min}, not ${value}`, 'BAD_OPTION');
  }
}

/** The package that ships each tool we run, for the "install it" hint. */
const PACKAGE_OF: Record<string, string> = {
  'qemu-img': 'qemu-utils',
  'qemu-io': 'qemu-utils',
  virsh: 'libvirt-clients',
};

interface ExecFailure extends Error {
  code?: string | number;
}

/** Runs a tool without a shell; rejects with a LabError naming the tool (and its package if missing). */
export function runTool(tool: string, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(tool, args, { timeout: timeoutMs, maxBuffer: 16 * MiB }, (error, stdout, stderr) => {
      if (!error) {
        resolvePromise(stdout);
        return;
      }
      const failure = error as ExecFailure;
      if (failure.code === 'ENOENT') {
        const pkg = PACKAGE_OF[tool];
        const hint = pkg ? `: install the ${pkg} package (Debian: apt-get install ${pkg})` : '';
        reject(new LabError(`${tool} was not found in PATH${hint}`, 'TOOL_MISSING', { cause: error }));
        return;
      }
      const detail = [String(stderr).trim(), String(stdout).trim()].filter(Boolean).join('\n') || failure.message;
      reject(new LabError(`${tool} ${args.join(' ')} failed: ${detail}`, 'TOOL_FAILED', { cause: error }));
    });
  });
}

/** Whether QEMU's user may enter a folder; with no user known, whether other users may. */
function qemuMayEnter(info: { uid: number; gid: number; mode: number }, qemu: QemuUser | null): boolean {
  return qemu ? allows(info, qemu, groupsOf(qemu), 1) : (info.mode & 0o001) !== 0;
}

/**
 * The system instance runs QEMU as another user (Debian's libvirtd runs it as libvirt-qemu and
 * chowns the images it uses, "dynamic ownership"), so that user must be able to reach the images:
 * every directory on the way needs search permission for it. mkdtemp makes 0700 directories,
 * which fail with "Cannot access storage file ... (as uid:999, gid:995): Permission denied". A
 * session instance runs QEMU as the user, who reaches their own folders. With QEMU's user as
 * libvirt names it (`qemu`; null: unknown, so assume another user), we refuse, with a clear error,
 * an ancestor we did not create that it cannot enter, rather than loosening someone else's
 * directory, and give the directories we make 0711 (search, no listing) where QEMU is another user.
 */
export async function makeTraversable(dir: string, qemu: QemuUser | null = null): Promise<void> {
  const absolute = resolve(dir);
  // Check the existing ancestors first, so a refused directory is not left behind half-made.
  for (let parent = dirname(absolute); ; parent = dirname(parent)) {
    const info = await stat(parent).catch(() => null);
    if (info !== null && !qemuMayEnter(info, qemu)) {
      const who = qemu ? `QEMU's user (${qemu.uid}:${qemu.gid}, from ${qemu.source}) cannot enter ${parent}` : `${parent} is not searchable by other users`;
      throw new LabError(
        `QEMU cannot reach images under ${absolute}: ${who} ` +
          `(mode ${(info.mode & 0o777).toString(8)}); choose a directory such as /tmp or /var/lib/libvirt/images`,
        'NOT_TRAVERSABLE',
      );
    }
    if (parent === dirname(parent)) break;
  }
  if (qemu !== null && qemu.uid === process.getuid?.()) {
    await mkdir(absolute, { recursive: true });
    return;
  }
  // Directories made here (the lab directory and any missing parents: 0777 & ~umask, so 0700
  // under umask 077) get search permission for everyone; the lab directory at least 0711.
  const firstMade = await mkdir(absolute, { recursive: true });
  const made: string[] = [];
  if (firstMade !== undefined) {
    for (let d = absolute; d.length >= firstMade.length; d = dirname(d)) made.push(d);
  } else {
    made.push(absolute);
  }
  for (const d of made) {
    const mode = (await stat(d)).mode & 0o777;
    if ((mode & 0o011) !== 0o011) await chmod(d, mode | 0o711);
  }
}

/**
 * Makes a qcow2 backing chain in `dir` and writes real data into every layer: the base gets
 * `baseDataBytes` of pattern 0xa0 at offset 0, overlay i gets `overlayDataBytes` of its own
 * pattern at its own offset after that, so each layer holds data no other layer has.
 */
export async function createBackingChain(options: BackingChainOptions): Promise<BackingChain> {
  const count = options.layers ?? 3;
  const virtualSize = options.virtualSize ?? GiB;
  const baseData = options.baseDataBytes ?? 64 * MiB;
  const overlayData = options.overlayDataBytes ?? 4 * MiB;
  const fileName = options.fileName ?? defaultFileName;
  if (!Number.isSafeInteger(count) || count < 1 || count > 32) {
    throw new LabError(`layers must be a whole number from 1 to 32, not ${count}`, 'BAD_OPTION');
  }
  checkSize('virtualSize', virtualSize, MiB);
  checkSize('baseDataBytes', baseData, 0);
  checkSize('overlayDataBytes', overlayData, 0);
  const dataEnd = baseData + (count - 1) * overlayData;
  if (dataEnd > virtualSize) {
    throw new LabError(`the layers' data (${dataEnd} bytes) does not fit in virtualSize ${virtualSize}`, 'BAD_OPTION');
  }

  await makeTraversable(options.dir, options.qemuUser ?? null);
  const dir = resolve(options.dir);
  const layers: string[] = [];
  const writes: LayerWrite[] = [];
  for (let i = 0; i < count; i++) {
    const path = join(dir, fileName(i, count));
    const backing = layers[i - 1];
    const args = ['create', '-q', '-f', 'qcow2'];
    // Always name the backing format (-F): qemu-img refuses to guess it since QEMU 6.1.
    if (backing !== undefined) args.push('-b', backing, '-F', 'qcow2');
    args.push(path, String(virtualSize));
    await runTool('qemu-img', args);
    await chmod(path, 0o644);
    const write: LayerWrite = {
      layer: i,
      path,
      pattern: layerPattern(i),
      offset: i === 0 ? 0 : baseData + (i - 1) * overlayData,
      length: i === 0 ? baseData : overlayData,
    };
    if (write.length > 0) {
      await runTool('qemu-io', ['-f', 'qcow2', '-c', `write -q -P 0x${write.pattern.toString(16)} ${write.offset} ${write.length}`, path]);
    }
    writes.push(write);
    layers.push(path);
  }
  return { layers, writes, virtualSize };
}
