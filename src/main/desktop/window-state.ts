// The main window's size and place, remembered between runs in `window-state.json` in the data
// folder. The file is checked on read (anything else is ignored, never trusted), and a saved
// place that is no longer on a screen (a monitor unplugged, a resolution changed) is moved onto
// the screen it overlaps most, or the primary one, and shrunk to fit.
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface WindowState {
  bounds: Rect;
  maximized: boolean;
}

export const defaultSize = { width: 1280, height: 820 } as const;
export const minSize = { width: 720, height: 480 } as const;

const coordinate = z.number().int().min(-100_000).max(100_000);
const length = z.number().int().min(1).max(100_000);
const schema = z
  .object({
    bounds: z.object({ x: coordinate, y: coordinate, width: length, height: length }).strict(),
    maximized: z.boolean(),
  })
  .strict();

export function windowStateFile(dataDir: string): string {
  return join(dataDir, 'window-state.json');
}

/** The saved state, or null when the text is not what Strata writes. */
export function parseWindowState(text: string): WindowState | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/** Null when there is no file or it is not valid: the window then opens at its default size. */
export async function readWindowState(file: string): Promise<WindowState | null> {
  try {
    return parseWindowState(await readFile(file, 'utf8'));
  } catch {
    return null;
  }
}

/** Written whole to a temporary name, then renamed: a crash leaves the old file or the new one. */
export async function writeWindowState(file: string, state: WindowState): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

function overlap(a: Rect, b: Rect): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), Math.max(lo, hi));
}

/**
 * Where the window opens: the saved bounds moved and shrunk into the work area (screen minus
 * panels) of the display they overlap most, or of the primary display when they overlap none.
 * Without saved bounds, the default size centred on the primary display.
 */
export function placeWindow(saved: WindowState | null, workAreas: readonly Rect[], primary: Rect): WindowState {
  if (!saved) {
    const width = Math.min(defaultSize.width, primary.width);
    const height = Math.min(defaultSize.height, primary.height);
    const bounds = { x: primary.x + Math.round((primary.width - width) / 2), y: primary.y + Math.round((primary.height - height) / 2), width, height };
    return { bounds, maximized: false };
  }
  let area = primary;
  let best = 0;
  for (const candidate of workAreas) {
    const o = overlap(saved.bounds, candidate);
    if (o > best) {
      best = o;
      area = candidate;
    }
  }
  const width = clamp(saved.bounds.width, Math.min(minSize.width, area.width), area.width);
  const height = clamp(saved.bounds.height, Math.min(minSize.height, area.height), area.height);
  const x = clamp(saved.bounds.x, area.x, area.x + area.width - width);
  const y = clamp(saved.bounds.y, area.y, area.y + area.height - height);
  return { bounds: { x, y, width, height }, maximized: saved.maximized };
}
