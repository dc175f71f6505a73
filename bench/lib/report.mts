// What every benchmark of the suite hands back to bench/suite.mts: figures with their target and
// verdict, written as JSON to the file named by --json, so the suite can merge them into
// bench/results/latest.json and its Markdown table.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';

export interface Figure {
  /** What was measured, as the table shows it. */
  what: string;
  value: number;
  unit: string;
  /** Spread or range, as text: "p99 …", "min–max …". */
  spread?: string;
  /** The anchor the value is compared with (libvirt-python, virsh, a target), as text. */
  against?: string;
  target?: string;
  /** null: no target, or not measured. */
  met?: boolean | null;
}

export interface BenchResult {
  name: string;
  method: string;
  loadBefore: number[];
  loadAfter: number[];
  figures: Figure[];
  notes: string[];
  detail?: unknown;
}

export function load(): number[] {
  return loadavg().map((l) => Number(l.toFixed(2)));
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i] ?? NaN;
}

/** CPU seconds (user + system, all threads) a process has used so far; 0 once it is gone. */
export function procCpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

/** Resident memory of a process in MiB (VmRSS). */
export function procRssMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export async function writeResult(file: string | undefined, result: BenchResult): Promise<void> {
  for (const f of result.figures) {
    const verdict = f.met === true ? 'met' : f.met === false ? 'MISSED' : '';
    console.log(`  ${f.what}: ${round(f.value)} ${f.unit}${f.spread ? ` (${f.spread})` : ''}${f.against ? `; ${f.against}` : ''}${f.target ? `; target ${f.target}: ${verdict}` : ''}`);
  }
  for (const n of result.notes) console.log(`  note: ${n}`);
  if (file) await writeFile(file, JSON.stringify(result, null, 2));
}

export function round(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3);
}
