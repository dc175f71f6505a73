// Small JSON files in the app's data folder, written so a crash never leaves half a file:
// write a temporary file beside it, then rename over the old one. A file that is not what it
// should be (invalid JSON, or failing its schema) is moved aside, never lost and never fatal.
// Writes and removals of one file run one at a time, in the order asked, so the last one asked
// is what stays: two writes racing on one temporary name once lost a record (ENOENT at the second
// rename), and a write that finished after a removal would bring a removed record back.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { z } from 'zod';
import { log } from '../../log/logger.ts';
import { StartupError } from './data-dir.ts';

export interface JsonRead<T> {
  /** Undefined when the file is absent or was moved aside. */
  value: T | undefined;
  /** For the user, when the file was moved aside: which file, why, and where it is now. */
  warning: string | null;
}

/** `hosts.json.corrupt-2026-11-29T18-50-00-123Z`: sorts by time, valid in every file system. */
export function asidePath(path: string, now: Date): string {
  return `${path}.corrupt-${now.toISOString().replace(/[:.]/g, '-')}`;
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Reads `path` and checks it against `schema`. Absent: undefined. Invalid: moved aside with a
 * logged warning and undefined, so the app starts afresh. Unreadable: a StartupError saying what to do.
 */
export async function readJsonFile<T>(path: string, schema: z.ZodType<T>, now = new Date()): Promise<JsonRead<T>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { value: undefined, warning: null };
    throw new StartupError(`cannot read ${path} (${reasonOf(err)}): give this user read and write access to it, or move it aside to start afresh`, {
      cause: err,
    });
  }
  let why: string;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    if (parsed.success) return { value: parsed.data, warning: null };
    const issue = parsed.error.issues[0];
    why = `${issue?.path.join('.') || '(file)'}: ${issue?.message ?? 'does not match'}`;
  } catch (err) {
    why = `not JSON: ${reasonOf(err)}`;
  }
  const aside = asidePath(path, now);
  try {
    await rename(path, aside);
  } catch (err) {
    throw new StartupError(`${path} is not valid (${why}) and cannot be moved aside (${reasonOf(err)}): move it away yourself, then start again`, {
      cause: err,
    });
  }
  const warning = `${basename(path)} was not valid (${why}); it was moved aside to ${aside} and Strata started with an empty one.`;
  log.warn(`${basename(path)} was not valid: moved aside, starting with an empty one`, { path, movedTo: aside, reason: why });
  return { value: undefined, warning };
}

/** The last change asked for each file, until it is done. */
const pending = new Map<string, Promise<void>>();

function inTurn(path: string, change: () => Promise<void>): Promise<void> {
  // The one before failed for its own caller, who was told; this change goes ahead regardless.
  const next = (pending.get(path) ?? Promise.resolve()).catch(() => undefined).then(change);
  pending.set(path, next);
  const forget = (): void => {
    if (pending.get(path) === next) pending.delete(path);
  };
  next.then(forget, forget);
  return next;
}

/** Writes `value` as it is now, after any change of the same file asked before. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  return inTurn(path, async () => {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temporary, text, { mode: 0o600 });
      await rename(temporary, path);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
  });
}

/** Removes the file, after any change of it asked before. */
export function removeJson(path: string): Promise<void> {
  return inTurn(path, () => rm(path, { force: true }));
}
