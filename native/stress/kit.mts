// The stress run's shared kit: the addon, the run's settings, and the bookkeeping of
// expectations met and missed. See stress.mts.
import { readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Native from '../index.d.ts';

export type NativeModule = typeof Native;
export type Connection = Native.Connection;
export type Domain = Native.Domain;

// run.sh preloads libasan into this process only: the tools the lab runs (qemu-img, qemu-io) are
// not ours, and LeakSanitizer in them would fail them at exit. Kept for the child process that
// loads the addon again (droppedListener).
export const PRELOAD = process.env['LD_PRELOAD'];
delete process.env['LD_PRELOAD'];

// native/index.js loads the sanitized build named by STRATA_NATIVE_ADDON, if any.
export const lv = createRequire(import.meta.url)('../index.js') as NativeModule;
export const URI = process.env['STRATA_STRESS_URI'] || 'qemu:///system';
export const SCALE = Number(process.env['STRATA_STRESS_SCALE'] || '1');
if (!(SCALE > 0)) throw new Error(`STRATA_STRESS_SCALE must be a positive number, not ${process.env['STRATA_STRESS_SCALE']}`);
const phaseList = (name: string): string[] => (process.env[name] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
export const ONLY = phaseList('STRATA_STRESS_ONLY');
export const SKIP = phaseList('STRATA_STRESS_SKIP');
export const n = (count: number): number => Math.max(1, Math.round(count * SCALE));

export const gc = globalThis.gc;
if (gc === undefined) throw new Error('run with node --expose-gc');


// ---------------------------------------------------------------------------------------------
// Bookkeeping: every expectation met counts under a name; every miss is kept and printed.

export const counts = new Map<string, number>();
export const failures: string[] = [];
/** Calls made, for the per-phase and final counts. */
export const tally = { calls: 0 };

export function ok(what: string, count = 1): void {
  counts.set(what, (counts.get(what) ?? 0) + count);
}
export function fail(what: string, detail: string): void {
  counts.set(`${what} FAILED`, (counts.get(`${what} FAILED`) ?? 0) + 1);
  if (failures.length < 50) failures.push(`${what}: ${detail}`);
}

export function describe(err: unknown): string {
  if (err instanceof lv.LibvirtError) return `LibvirtError ${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** Awaits a call that must succeed; `check` may refine what success means. */
export async function expectOk<T>(what: string, call: () => Promise<T>, check?: (value: T) => string | null): Promise<T | undefined> {
  tally.calls++;
  try {
    const value = await call();
    const problem = check?.(value) ?? null;
    if (problem === null) ok(what);
    else fail(what, problem);
    return value;
  } catch (err) {
    fail(what, describe(err));
    return undefined;
  }
}

/** A call that must reject with a LibvirtError of one of `codes`. */
export async function expectReject(what: string, call: () => Promise<unknown>, codes: readonly string[]): Promise<void> {
  tally.calls++;
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (err) {
    fail(what, `threw synchronously instead of rejecting: ${describe(err)}`);
    return;
  }
  try {
    await promise;
    fail(what, 'resolved, expected a rejection');
  } catch (err) {
    if (err instanceof lv.LibvirtError && codes.includes(err.code)) ok(what);
    else fail(what, `expected LibvirtError ${codes.join('|')}, got ${describe(err)}`);
  }
}

export type ErrorClass = typeof TypeError | typeof RangeError | typeof Error;

/** Calls `target[method](...args)` bypassing the types; it must throw `type` synchronously. */
export function expectThrow(what: string, target: object, method: string, args: unknown[], type: ErrorClass): void {
  tally.calls++;
  const fn: unknown = Reflect.get(target, method);
  if (typeof fn !== 'function') {
    fail(what, `${method} is not a method`);
    return;
  }
  let result: unknown;
  try {
    result = Reflect.apply(fn, target, args);
  } catch (err) {
    if (err instanceof type && !(err instanceof lv.LibvirtError && type !== Error)) ok(what);
    else fail(what, `${method}(${args.map(String).join(', ')}) threw ${describe(err)}, expected ${type.name}`);
    return;
  }
  if (result instanceof Promise) result.catch(() => undefined);
  fail(what, `${method}(${args.map(String).join(', ')}) did not throw`);
}

/** Runs `fn(i)` for i in [0, total) with at most `width` calls in flight. */
export async function inFlight(total: number, width: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, total) }, worker));
}

export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Full collections, with turns of the event loop between them so finalizers and their immediates run. */
export async function collect(rounds = 4): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    gc?.();
    await tick();
    await sleep(10);
  }
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export const MISS = `strata-stress-no-such-domain-${randomBytes(4).toString('hex')}`;
export const GONE = ['VIR_ERR_NO_DOMAIN'];

export function phase(title: string): () => void {
  const started = Date.now();
  const callsBefore = tally.calls;
  process.stdout.write(`-- ${title} … `);
  return () => process.stdout.write(`${tally.calls - callsBefore} calls, ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

