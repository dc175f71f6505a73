// The model's scale, on libvirt's test:/// driver (no QEMU, no images): hosts generated as XML
// (bench/lib/test-host.mts), read through the same core and dispatcher the app uses.
//   full model: createCore on a 1,000-domain host (4 disks each, chains of depth 1 to 50) until
//     domains.list and domain.get of every domain answered, listening to the core's events as the
//     window does; against bench/scale_model.py (libvirt-python reading every domain's XML and
//     parsing its chains), rounds alternating. The target is on the time after libvirt's open,
//     which each client times in the same run.
//   calls: the libvirt calls Strata made for it, by facade method.
//   memory: resident and heap growth of the process for that model.
//   deep chain: domain.get and a pull's preview of one disk whose chain is 200 deep.
//   growth: domain.get and operation.preview of one domain on the 1,000-domain host against the
//     same on a 10-domain host (must not grow with the number of domains), both hosts connected
//     at once and measured in alternating rounds.
//
//   node --expose-gc --import tsx bench/scale.mts [--rounds 3] [--json FILE]
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { createCore, defaultHostId, type StrataCore } from '../src/main/core/api/core.ts';
import { LibvirtConnection } from '../src/main/libvirt/connection.ts';
import type { Reply } from '../src/shared/bridge.ts';
import { writeTestHost } from './lib/test-host.mts';
import { load, median, writeResult, type Figure } from './lib/report.mts';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    python: { type: 'string', default: process.env['STRATA_BENCH_PYTHON'] || '/usr/bin/python3' },
    json: { type: 'string' },
  },
});
const ROUNDS = Math.max(1, Number(opts.rounds));
const DOMAINS = 1000;
const DISKS = 4;

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

async function call(core: StrataCore, method: string, params: unknown): Promise<unknown> {
  const reply: Reply = await core.dispatcher.handle(method, params);
  if (!reply.ok) throw new Error(`${method}: ${reply.error.message}`);
  return reply.result;
}

async function withCore<T>(uri: string, body: (core: StrataCore) => Promise<T>): Promise<T> {
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-scale-'));
  const core = await createCore({ uri, dataDir, labRoot: null });
  try {
    await connected(core);
    return await body(core);
  } finally {
    await core.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

// libvirt's open inside the core, timed where it happens: on the 1,000-domain test host it takes
// seconds and varies with the machine's load, so one timed apart would not say what this round's took.
let openedAt: number | null = null;
const open = LibvirtConnection.open.bind(LibvirtConnection);
LibvirtConnection.open = async (...args: Parameters<typeof open>) => {
  const conn = await open(...args);
  openedAt = performance.now();
  calls.clear();
  return conn;
};

// The facade's calls after the open, by method (each is one libvirt call): what a full model asks
// of libvirt, so that a call per domain added anywhere shows.
const calls = new Map<string, number>();
for (const name of Object.getOwnPropertyNames(LibvirtConnection.prototype)) {
  const descriptor = Object.getOwnPropertyDescriptor(LibvirtConnection.prototype, name);
  const method = descriptor?.value as ((...args: unknown[]) => unknown) | undefined;
  if (name === 'constructor' || typeof method !== 'function') continue;
  Object.defineProperty(LibvirtConnection.prototype, name, {
    ...descriptor,
    value(this: LibvirtConnection, ...args: unknown[]) {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return method.apply(this, args);
    },
  });
}
const callCount = (): number => [...calls.values()].reduce((a, b) => a + b, 0);

/** Until the default host is connected: createCore waits for it 3 s at most, and a loaded machine's open of this host can take longer. */
async function connected(core: StrataCore): Promise<void> {
  const state = async (): Promise<string | undefined> =>
    ((await call(core, 'hosts.list', {})) as { id: string; state: string }[]).find((h) => h.id === defaultHostId)?.state;
  if ((await state()) === 'connected') return;
  await new Promise<void>((resolve) => {
    const off = core.hub.on((event, data) => {
      if (event === 'host' && (data as { id: string; state: string }).id === defaultHostId && (data as { state: string }).state === 'connected') {
        off();
        resolve();
      }
    });
  });
}

/** Connect to a full model: the time the app needs before it can show every chain. */
async function fullModel(
  uri: string,
): Promise<{ seconds: number; afterOpenSeconds: number; layers: number; rssMiB: number; heapMiB: number; calls: number; callsByMethod: Record<string, number> }> {
  gc();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  openedAt = null;
  const start = performance.now();
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-scale-'));
  const core = await createCore({ uri, dataDir, labRoot: null });
  // The window listens from its start: the core then sweeps for jobs and changes as it does for it.
  const stopListening = core.hub.on(() => undefined);
  try {
    await connected(core);
    const list = (await call(core, 'domains.list', { hostId: defaultHostId })) as { name: string }[];
    const details = (await Promise.all(list.map((d) => call(core, 'domain.get', { hostId: defaultHostId, domain: d.name })))) as {
      disks: { chain: unknown[] }[];
    }[];
    const end = performance.now();
    const callsByMethod = Object.fromEntries(calls);
    const callsMade = callCount();
    const seconds = (end - start) / 1000;
    if (openedAt === null) throw new Error('the core did not open a connection');
    const afterOpenSeconds = (end - openedAt) / 1000;
    if (details.length !== DOMAINS) throw new Error(`expected ${DOMAINS} domains, got ${details.length}`);
    const layers = details.reduce((n, d) => n + d.disks.reduce((m, k) => m + k.chain.length, 0), 0);
    gc();
    const mem = process.memoryUsage();
    return { seconds, afterOpenSeconds, layers, rssMiB: (mem.rss - rss0) / 2 ** 20, heapMiB: (mem.heapUsed - heap0) / 2 ** 20, calls: callsMade, callsByMethod };
  } finally {
    stopListening();
    await core.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function python(uri: string): Promise<{ seconds: number; openSeconds: number; layers: number; maxRssMiB: number }> {
  const { stdout } = await promisify(execFile)(opts.python ?? '/usr/bin/python3', [join(here, 'scale_model.py'), '--uri', uri]);
  return JSON.parse(stdout) as { seconds: number; openSeconds: number; layers: number; maxRssMiB: number };
}

/**
 * libvirt's open of the host alone: the test driver parses the whole generated file then, before
 * any domain is read. It bounds the full model from below for any client.
 */
async function openOnly(uri: string): Promise<number> {
  const start = performance.now();
  const conn = await open(uri);
  const seconds = (performance.now() - start) / 1000;
  await conn.close();
  return seconds;
}

/** Median milliseconds of `n` calls of `f`, after a few unmeasured ones. */
async function timeCalls(n: number, f: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 5; i++) await f();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    ms.push(performance.now() - t);
  }
  return median(ms);
}

type Costs = { getMs: number; previewMs: number };

const getOn = (core: StrataCore, domain: string) => () => call(core, 'domain.get', { hostId: defaultHostId, domain });
const previewOn = (core: StrataCore, domain: string, disk: string) => () =>
  call(core, 'operation.preview', { hostId: defaultHostId, domain, disk, operation: { kind: 'pull' } });

async function perDomainCosts(uri: string, domain: string, disk: string): Promise<Costs> {
  return withCore(uri, async (core) => {
    await call(core, 'domains.list', { hostId: defaultHostId });
    const getMs = await timeCalls(50, getOn(core, domain));
    const previewMs = await timeCalls(50, previewOn(core, domain, disk));
    return { getMs, previewMs };
  });
}

/**
 * The same calls on two hosts, both connected at once and measured in alternating rounds: the
 * machine's moods (another process, a GC) fall on both alike, and the ratio shows only growth.
 */
async function growthCosts(bigUri: string, smallUri: string, domain: string, disk: string, rounds = 10, perRound = 20): Promise<{ big: Costs; small: Costs }> {
  return withCore(bigUri, (big) =>
    withCore(smallUri, async (small) => {
      const cores = [big, small] as const;
      const samples = cores.map(() => ({ get: [] as number[], preview: [] as number[] }));
      for (const core of cores) {
        await call(core, 'domains.list', { hostId: defaultHostId });
        for (let i = 0; i < 5; i++) {
          await getOn(core, domain)();
          await previewOn(core, domain, disk)();
        }
      }
      for (let r = 0; r < rounds; r++) {
        for (const c of r % 2 === 0 ? [0, 1] : [1, 0]) {
          for (let i = 0; i < perRound; i++) {
            let t = performance.now();
            await getOn(cores[c]!, domain)();
            samples[c]!.get.push(performance.now() - t);
            t = performance.now();
            await previewOn(cores[c]!, domain, disk)();
            samples[c]!.preview.push(performance.now() - t);
          }
        }
      }
      const costs = (i: number): Costs => ({ getMs: median(samples[i]!.get), previewMs: median(samples[i]!.preview) });
      return { big: costs(0), small: costs(1) };
    }),
  );
}

async function main(): Promise<void> {
  const loadBefore = load();
  const dir = await mkdtemp(join(tmpdir(), 'strata-bench-hosts-'));
  try {
    const depth = (i: number, d: number): number => 1 + ((i * DISKS + d) % 50);
    const big = await writeTestHost(join(dir, 'big.xml'), { domains: DOMAINS, disksPerDomain: DISKS, depth });
    const small = await writeTestHost(join(dir, 'small.xml'), { domains: 10, disksPerDomain: DISKS, depth });
    const deep = await writeTestHost(join(dir, 'deep.xml'), { domains: 1, disksPerDomain: 1, depth: () => 200 });
    console.log(`scale: ${DOMAINS} domains × ${DISKS} disks, chains 1–50 deep, ${ROUNDS} rounds alternating with libvirt-python; load ${loadBefore.join(' ')}`);

    const strata: Awaited<ReturnType<typeof fullModel>>[] = [];
    const py: Awaited<ReturnType<typeof python>>[] = [];
    const opens: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      opens.push(await openOnly(big));
      strata.push(await fullModel(big));
      py.push(await python(big));
      const [sr, pr] = [strata.at(-1)!, py.at(-1)!];
      console.log(
        `round ${r + 1}: after the open Strata ${sr.afterOpenSeconds.toFixed(3)} s, libvirt-python ${(pr.seconds - pr.openSeconds).toFixed(3)} s; ` +
          `with it ${sr.seconds.toFixed(3)} s, ${pr.seconds.toFixed(3)} s; Strata's libvirt calls ${sr.calls}; load ${load().join(' ')}`,
      );
    }
    if (strata[0]?.layers !== py[0]?.layers) throw new Error(`Strata saw ${strata[0]?.layers} layers, libvirt-python ${py[0]?.layers}`);
    const s = strata.map((x) => x.seconds);
    const p = py.map((x) => x.seconds);
    const range = (xs: number[]): string => `${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)} s over ${xs.length} rounds`;

    const deepCosts = await perDomainCosts(deep, 'bench-0000', 'vda');
    const { big: bigCosts, small: smallCosts } = await growthCosts(big, small, 'bench-0001', 'vda');

    // libvirt's open of the 1,000-domain host (its test driver parsing the whole file) takes about
    // 2 s for any client, so the target is on what follows it, as each client timed it.
    const after = strata.map((x) => x.afterOpenSeconds);
    const pyAfter = py.map((x) => x.seconds - x.openSeconds);
    const afterRatio = median(after) / median(pyAfter);
    const figures: Figure[] = [
      {
        what: `the full model after the open, ${DOMAINS} domains × ${DISKS} disks (${strata[0]?.layers} layers): listing, reading and parsing every domain, Strata / libvirt-python`,
        value: afterRatio,
        unit: '×',
        spread: `Strata ${median(after).toFixed(3)} s (${range(after)})`,
        against: `libvirt-python ${median(pyAfter).toFixed(3)} s (${range(pyAfter)})`,
        target: '≤ 1.0× libvirt-python',
        met: afterRatio <= 1,
      },
      {
        what: `libvirt calls for that model after the open (through the facade; libvirt-python makes ${DOMAINS + 1})`,
        value: median(strata.map((x) => x.calls)),
        unit: 'calls',
        spread: Object.entries(strata.at(-1)?.callsByMethod ?? {})
          .map(([method, n]) => `${method} ${n}`)
          .join(', '),
      },
      {
        what: "libvirt's open of that host (its test driver parsing the file), before any domain is read",
        value: median(opens),
        unit: 's',
        spread: range(opens),
        against: `libvirt-python's open ${median(py.map((x) => x.openSeconds)).toFixed(3)} s`,
      },
      {
        what: 'connect to that full model, the open included',
        value: median(s),
        unit: 's',
        spread: range(s),
        against: `libvirt-python ${median(p).toFixed(3)} s (${range(p)})`,
      },
      {
        what: 'memory of that model (growth of the process, after GC)',
        value: median(strata.map((x) => x.rssMiB)),
        unit: 'MiB RSS',
        spread: `JS heap ${median(strata.map((x) => x.heapMiB)).toFixed(1)} MiB`,
        against: `libvirt-python's whole process peaked at ${median(py.map((x) => x.maxRssMiB)).toFixed(0)} MiB`,
      },
      { what: 'domain.get of a 200-deep chain', value: deepCosts.getMs, unit: 'ms', spread: 'median of 50' },
      { what: 'preview of a pull on a 200-deep chain', value: deepCosts.previewMs, unit: 'ms', spread: 'median of 50' },
      {
        what: `domain.get on the ${DOMAINS}-domain host / on a 10-domain host`,
        value: bigCosts.getMs / smallCosts.getMs,
        unit: '×',
        spread: `${bigCosts.getMs.toFixed(3)} ms / ${smallCosts.getMs.toFixed(3)} ms, medians of 200, alternating rounds`,
        target: 'no growth (< 1.5×)',
        met: bigCosts.getMs / smallCosts.getMs < 1.5,
      },
      {
        what: `preview on the ${DOMAINS}-domain host / on a 10-domain host`,
        value: bigCosts.previewMs / smallCosts.previewMs,
        unit: '×',
        spread: `${bigCosts.previewMs.toFixed(3)} ms / ${smallCosts.previewMs.toFixed(3)} ms, medians of 200, alternating rounds`,
        target: 'no growth (< 1.5×)',
        met: bigCosts.previewMs / smallCosts.previewMs < 1.5,
      },
    ];
    await writeResult(opts.json, {
      name: 'scale',
      method:
        "libvirt's test:/// driver with generated XML hosts; createCore + domains.list + domain.get of every domain through the dispatcher, " +
        'alternating with bench/scale_model.py (libvirt-python: XMLDesc of every domain, chains parsed with ElementTree)',
      loadBefore,
      loadAfter: load(),
      figures,
      notes: [],
      detail: { strata, python: py, deepCosts, bigCosts, smallCosts },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
