// Bandwidth limits as the UI offers them: a log scale of round stops from 1 MiB/s up, then "no
// limit". A slider moves an index into these stops (its aria-valuetext says the rate), since a
// linear 0..N range would give the first few MiB/s, where limits matter most, a few pixels.
import { MiB } from './format.ts';

const stopsMiB = [1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000];

/** Limits in bytes/s, the last one 0: no limit. */
export const limitStops: readonly number[] = [...stopsMiB.map((m) => m * MiB), 0];
export const noLimitIndex = limitStops.length - 1;

/** The stop nearest a limit on the log scale (0, or anything past the top, is "no limit"). */
export function stopIndex(bytesPerSec: number): number {
  if (bytesPerSec <= 0 || bytesPerSec > 2000 * MiB * 1.25) return noLimitIndex;
  let best = 0;
  let distance = Infinity;
  for (let i = 0; i < noLimitIndex; i++) {
    const d = Math.abs(Math.log(bytesPerSec / limitStops[i]!));
    if (d < distance) {
      best = i;
      distance = d;
    }
  }
  return best;
}

export function stopAt(index: number): number {
  return limitStops[Math.max(0, Math.min(noLimitIndex, Math.round(index)))] ?? 0;
}

/** A typed limit in MiB/s: empty or 0 is no limit; null when the text is not a limit. */
export function parseMiB(text: string): number | null {
  const t = text.trim();
  if (t === '') return 0;
  if (!/^\d+(\.\d+)?$/.test(t)) return null;
  const bytes = Math.round(Number(t) * MiB);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** A limit as typed text: whole MiB/s where it is, one decimal otherwise, empty for none. */
export function toMiBText(bytesPerSec: number): string {
  if (bytesPerSec <= 0) return '';
  const mib = bytesPerSec / MiB;
  return Number.isInteger(mib) ? String(mib) : mib.toFixed(1);
}
