// qemu-img, run without a shell: a chain as the image headers record it, a consistency check, and
// new images. Paths go in an argument list, so spaces or quotes in them are never interpreted.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

/** A tool failed or is missing; the message carries its own words. */
export class ImageToolError extends Error {
  override name = 'ImageToolError';
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stdout = '',
  ) {
    super(message);
  }
}

export function runImageTool(tool: string, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(tool, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) {
        resolvePromise(stdout);
        return;
      }
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        reject(new ImageToolError(`${tool} was not found: install QEMU's tools (Debian: apt-get install qemu-utils)`, null));
        return;
      }
      const detail = String(stderr).trim() || String(stdout).trim() || error.message;
      reject(new ImageToolError(`${tool} ${args.join(' ')}: ${detail}`, typeof code === 'number' ? code : null, String(stdout)));
    });
  });
}

/** An internal qcow2 snapshot, as `qemu-img info` lists it. */
export interface InternalSnapshot {
  id: string;
  name: string;
  /** Seconds since the epoch. */
  dateSec: number;
  vmStateBytes: number;
  /** The guest's clock when taken, in nanoseconds. */
  vmClockNs: number;
}

/** One image of a chain as its header records it. */
export interface ImageLayer {
  /** Absolute path. */
  path: string;
  format: string;
  virtualSize: number;
  /** The backing file string exactly as written in the header (may be relative); null at the base. */
  backingRecorded: string | null;
  /** The backing format the header names; null when it names none. */
  backingFormat: string | null;
  internalSnapshots: InternalSnapshot[];
}

interface RawInfo {
  filename?: string;
  format?: string;
  'virtual-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  snapshots?: { id?: string; name?: string; 'date-sec'?: number; 'vm-state-size'?: number; 'vm-clock-sec'?: number; 'vm-clock-nsec'?: number }[];
}

/**
 * The chain under `image`, active layer first, read from the image headers. `forceShare` reads
 * images another process holds (QEMU's lock), as for a running domain; `single` reads `image` alone.
 */
export async function readImageChain(image: string, options: { forceShare?: boolean; single?: boolean } = {}): Promise<ImageLayer[]> {
  const args = ['info', ...(options.single ? [] : ['--backing-chain']), '--output=json', ...(options.forceShare ? ['-U'] : []), resolve(image)];
  const parsed: unknown = JSON.parse(await runImageTool('qemu-img', args));
  const list = (Array.isArray(parsed) ? parsed : [parsed]) as RawInfo[];
  return list.map((info, i) => {
    const path = i === 0 ? resolve(image) : resolve(list[i - 1]?.['full-backing-filename'] ?? info.filename ?? '');
    return {
      path,
      format: info.format ?? 'raw',
      virtualSize: info['virtual-size'] ?? 0,
      backingRecorded: info['backing-filename'] ?? null,
      backingFormat: info['backing-filename-format'] ?? null,
      internalSnapshots: (info.snapshots ?? []).map((s) => ({
        id: s.id ?? '',
        name: s.name ?? '',
        dateSec: s['date-sec'] ?? 0,
        vmStateBytes: s['vm-state-size'] ?? 0,
        vmClockNs: (s['vm-clock-sec'] ?? 0) * 1e9 + (s['vm-clock-nsec'] ?? 0),
      })),
    };
  });
}

export interface CheckResult {
  path: string;
  /** No corruption and no leaked clusters. */
  clean: boolean;
  corruptions: number;
  leaks: number;
  /** qemu-img's own words when not clean. */
  detail: string;
}

/** `qemu-img check`; raw images have nothing to check and are clean. */
export async function checkImage(path: string, format: string): Promise<CheckResult> {
  if (format === 'raw') return { path, clean: true, corruptions: 0, leaks: 0, detail: '' };
  let out: string;
  try {
    out = await runImageTool('qemu-img', ['check', '--output=json', '-f', format, path]);
  } catch (err) {
    // Exit codes 1–3 still print the JSON report (errors found, leaks found, …).
    if (!(err instanceof ImageToolError) || !err.stdout.trim().startsWith('{')) throw err;
    out = err.stdout;
  }
  const report = JSON.parse(out) as { corruptions?: number; leaks?: number; 'check-errors'?: number };
  const corruptions = (report.corruptions ?? 0) + (report['check-errors'] ?? 0);
  const leaks = report.leaks ?? 0;
  return { path, clean: corruptions === 0 && leaks === 0, corruptions, leaks, detail: corruptions || leaks ? out.trim() : '' };
}

/** A new, empty image; a qcow2 one may sit on a backing file (written into its header as given). */
export async function createImage(
  path: string,
  options: { format: 'qcow2' | 'raw'; virtualSize: number; backing?: { recorded: string; format: string } | null },
): Promise<void> {
  const args = ['create', '-q', '-f', options.format];
  if (options.backing) args.push('-b', options.backing.recorded, '-F', options.backing.format);
  args.push(path, String(options.virtualSize));
  await runImageTool('qemu-img', args);
}
