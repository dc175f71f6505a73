// Shared settings of the fuzzers: a fixed seed so a run is repeatable, and a way to try more.
// STRATA_FUZZ_SEED replays another seed (fast-check prints the failing one with its path);
// STRATA_FUZZ_RUNS multiplies every property's number of runs, for a longer hunt.
import type { Parameters } from 'fast-check';

export const fuzzSeed = Number(process.env['STRATA_FUZZ_SEED'] ?? 20261129);
const factor = Math.max(1, Number(process.env['STRATA_FUZZ_RUNS'] ?? 1));

export function fuzz<T>(numRuns: number, extra: Parameters<T> = {}): Parameters<T> {
  return { seed: fuzzSeed, numRuns: Math.round(numRuns * factor), ...extra };
}

/** The keys JSON.parse turns into own properties and a careless merge would walk into. */
export const pollutionKeys = ['__proto__', 'constructor', 'prototype'] as const;

export function assertPrototypesClean(): void {
  for (const proto of [Object.prototype, Array.prototype, Function.prototype]) {
    const added = Object.getOwnPropertyNames(proto).filter((k) => !pristine.get(proto)!.has(k));
    if (added.length > 0) throw new Error(`a prototype was polluted with ${added.join(', ')}`);
  }
  if (({} as Record<string, unknown>)['polluted'] !== undefined) throw new Error('Object.prototype.polluted is set');
}

const pristine = new Map<object, Set<string>>(
  [Object.prototype, Array.prototype, Function.prototype].map((p) => [p, new Set(Object.getOwnPropertyNames(p))]),
);
