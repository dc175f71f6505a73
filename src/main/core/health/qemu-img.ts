// qemu-img, run for what it reports about an image: never through a shell (arguments are an array,
// a path cannot become an option or a command), always with a timeout, read-only. `-U` (force
// share) lets it read an image a running QEMU holds locked; what it reads then may miss metadata
// QEMU keeps in memory, which the callers say.
import { execFile } from 'node:child_process';
import { StrataError } from '../../../shared/errors.ts';

export interface ToolRun {
  /** The exit code; qemu-img check uses 2 (corruptions) and 3 (leaks) beside 0. */
  code: number;
  stdout: string;
  stderr: string;
}

const maxOutputBytes = 16 * 1024 * 1024;

/** Runs `qemu-img args…`; rejects only when it cannot run or exceeds `timeoutMs`. */
export function runQemuImg(args: readonly string[], timeoutMs: number): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    execFile('qemu-img', args, { timeout: timeoutMs, maxBuffer: maxOutputBytes, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (!error) return resolve({ code: 0, stdout, stderr });
      const failure = error as NodeJS.ErrnoException & { code?: string | number; killed?: boolean };
      if (failure.code === 'ENOENT') {
        return reject(new StrataError('unavailable', 'qemu-img is not installed on this machine', { hint: 'Install it (Debian: apt-get install qemu-utils) to check images.' }));
      }
      if (failure.killed) {
        return reject(new StrataError('unavailable', `qemu-img ${args[0] ?? ''} took longer than ${Math.round(timeoutMs / 1000)} s and was stopped`, {
          hint: 'The image may be very large or its storage slow; try again when the host is less busy.',
        }));
      }
      if (typeof failure.code === 'number') return resolve({ code: failure.code, stdout, stderr });
      reject(new StrataError('internal', `qemu-img could not run: ${failure.message}`));
    });
  });
}

/** qemu-img's own words for a failure, on one line. */
export function qemuImgMessage(run: ToolRun): string {
  const text = (run.stderr.trim() || run.stdout.trim() || `exit code ${run.code}`).replace(/^qemu-img: /gm, '');
  return text.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
}

export interface ImageInfo {
  format: string;
  virtualBytes: number;
  allocatedBytes: number | null;
  backingFile: string | null;
  backingFormat: string | null;
  snapshots: string[];
  bitmaps: { name: string; flags: string[] }[];
  /** qcow2's corrupt bit: QEMU found an inconsistency and stopped writing the image. */
  corruptFlag: boolean;
  /** Set while an image with lazy refcounts was not closed cleanly. */
  dirtyFlag: boolean;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Reads `qemu-img info --output=json` (one image) into the facts the check reports. */
export function parseImageInfo(json: string): ImageInfo {
  const info = obj(JSON.parse(json));
  const data = obj(obj(info['format-specific'])['data']);
  return {
    format: str(info['format']) ?? 'unknown',
    virtualBytes: num(info['virtual-size']) ?? 0,
    allocatedBytes: num(info['actual-size']),
    backingFile: str(info['full-backing-filename']) ?? str(info['backing-filename']),
    backingFormat: str(info['backing-filename-format']),
    snapshots: arr(info['snapshots']).map((s) => str(obj(s)['name']) ?? '?'),
    bitmaps: arr(data['bitmaps']).map((b) => ({ name: str(obj(b)['name']) ?? '?', flags: arr(obj(b)['flags']).map((f) => String(f)) })),
    corruptFlag: data['corrupt'] === true,
    dirtyFlag: info['dirty-flag'] === true,
  };
}

export interface CheckResult {
  corruptions: number;
  leaks: number;
  /** Errors that kept the check from finishing (I/O errors while reading). */
  checkErrors: number;
}

/** Reads `qemu-img check --output=json`. */
export function parseCheck(json: string): CheckResult {
  const c = obj(JSON.parse(json));
  return { corruptions: num(c['corruptions']) ?? 0, leaks: num(c['leaks']) ?? 0, checkErrors: num(c['check-errors']) ?? 0 };
}

const infoTimeoutMs = 15_000;
const checkTimeoutMs = 120_000;
const measureTimeoutMs = 30_000;

/** `qemu-img info` of one image, without opening its backing file. */
export async function imageInfo(path: string, format: string | null, live: boolean): Promise<ImageInfo> {
  const args = ['info', '--output=json', ...(live ? ['-U'] : []), ...(format ? ['-f', format] : []), '--', path];
  const run = await runQemuImg(args, infoTimeoutMs);
  if (run.code !== 0) throw new StrataError('conflict', `qemu-img cannot read ${path}: ${qemuImgMessage(run)}`);
  return parseImageInfo(run.stdout);
}

/** `qemu-img check` (read-only: no -r); null for a format qemu-img cannot check (raw). */
export async function imageCheck(path: string, format: string, live: boolean): Promise<CheckResult | null> {
  const run = await runQemuImg(['check', '--output=json', ...(live ? ['-U'] : []), '-f', format, '--', path], checkTimeoutMs);
  // 0: clean, 2: corruptions, 3: leaks only; each with the JSON report on stdout.
  if ((run.code === 0 || run.code === 2 || run.code === 3) && run.stdout.trim().startsWith('{')) return parseCheck(run.stdout);
  // 63: "This image format does not support checks".
  if (run.code === 63) return null;
  throw new StrataError('conflict', `qemu-img check could not finish on ${path}: ${qemuImgMessage(run)}`);
}

/** Bytes a full copy of the chain under `path` needs in `outputFormat` (qemu-img measure's "required"). */
export async function measureCopy(path: string, format: string | null, outputFormat: string): Promise<number> {
  const args = ['measure', '--output=json', '-U', '-O', outputFormat, ...(format ? ['-f', format] : []), '--', path];
  const run = await runQemuImg(args, measureTimeoutMs);
  const required = run.code === 0 ? num(obj(JSON.parse(run.stdout))['required']) : null;
  if (required === null) throw new StrataError('conflict', `qemu-img cannot measure ${path}: ${qemuImgMessage(run)}`);
  return required;
}
