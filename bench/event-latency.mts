// Block-job event latency: how much later a JS callback of the Strata addon runs than
// libvirt-python's callback (bench/event_listener.py, another process on the same libvirtd) for
// the same event. Both take a CLOCK_MONOTONIC timestamp first thing in their callback (Node's
// process.hrtime, Python's time.monotonic_ns), so the difference needs no clock alignment.
//
// N lab domains each run short jobs one after another: a pull throttled to 1 MiB/s, cancelled
// after --hold-ms, whose BLOCK_JOB_2 CANCELED event both listeners get. The k-th event of a domain
// in one process is matched with the k-th in the other. Two phases:
//   idle: the addon makes no calls but those starting and cancelling the jobs
//   busy: one more loop of blockJobInfo calls, one at a time, runs all along (events then arrive
//         while the addon's calls use the connection)
// and for each the median, p99 and extremes of (Strata − Python), in microseconds.
//
//   node --import tsx bench/event-latency.mts [--events 240] [--domains 4] [--hold-ms 30]
//        [--only idle,busy] [--python /usr/bin/python3] [--uri qemu:///system] [--json FILE]
// Exit status: 0 done; 1 failure; 75 disturbed from outside (an event never came: libvirtd
// restarted, or a job ended by itself), as bench/blockjobinfo.mts. STRATA_NATIVE_ADDON measures
// another build of the addon (an older commit's, for a before/after).
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createTestLab, libvirt, sweepStaleLabDomains, type Domain, type TestLab } from '../test/lab/harness.ts';
import { MiB } from '../src/main/core/lab/images.ts';

const here = dirname(fileURLToPath(import.meta.url));

const { values: opts } = parseArgs({
  options: {
    events: { type: 'string', default: '240' },
    domains: { type: 'string', default: '4' },
    'hold-ms': { type: 'string', default: '30' },
    only: { type: 'string' },
    python: { type: 'string', default: process.env['STRATA_BENCH_PYTHON'] || '/usr/bin/python3' },
    uri: { type: 'string', default: process.env['STRATA_TEST_URI'] || 'qemu:///system' },
    json: { type: 'string' },
  },
});

const EVENTS = Number(opts.events);
const DOMAINS = Number(opts.domains);
const HOLD_MS = Number(opts['hold-ms']);
if (!(EVENTS > 0 && DOMAINS > 0 && HOLD_MS >= 0)) throw new Error('--events and --domains must be positive, --hold-ms not negative');
const PHASES = (opts.only ?? 'idle,busy').split(',').filter((p) => p === 'idle' || p === 'busy');
if (PHASES.length === 0) throw new Error('--only names none of idle, busy');
const PYTHON = opts.python ?? '/usr/bin/python3';
const URI = opts.uri ?? 'qemu:///system';
const DISK = 'vda';
const EVENT_TIMEOUT_MS = 15_000;
// Each cancelled pull still copies a chunk or two at once, whatever its speed limit: the base
// must outlast every job of both phases.
const BASE_MIB = Math.max(64, Math.ceil((EVENTS * PHASES.length) / DOMAINS) * 2);

class Disturbed extends Error {}

interface Seen {
  status: number;
  t: bigint;
}

/** Events seen per domain name, in order, with whoever waits for the next one. */
class Stream {
  readonly seen = new Map<string, Seen[]>();
  #waiters: (() => void)[] = [];
  push(dom: string, status: number, t: bigint): void {
    let list = this.seen.get(dom);
    if (!list) this.seen.set(dom, (list = []));
    list.push({ status, t });
    for (const w of this.#waiters.splice(0)) w();
  }
  count(dom: string): number {
    return this.seen.get(dom)?.length ?? 0;
  }
  async until(predicate: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + EVENT_TIMEOUT_MS;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Disturbed(`no event after ${EVENT_TIMEOUT_MS} ms: ${what}`);
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, Math.min(left, 200));
      });
      clearTimeout(timer);
    }
  }
}

function percentile(sorted: readonly number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Jobs one after another on one domain until `count` of its events were seen by both sides. */
async function jobs(dom: Domain, name: string, count: number, strata: Stream, python: Stream): Promise<void> {
  while (strata.count(name) < count) {
    const k = strata.count(name);
    await dom.blockPull(DISK, MiB, libvirt.VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES);
    await sleep(HOLD_MS);
    await dom.blockJobAbort(DISK, libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC);
    await strata.until(() => strata.count(name) > k && python.count(name) > k, `job ${k + 1} on ${name}`);
    // libvirt 9.0 refuses a new job until it has forgotten the cancelled one.
    while (Object.keys(await dom.blockJobInfo(DISK, 0)).length > 0) await sleep(5);
  }
}

interface PhaseResult {
  phase: string;
  events: number;
  p50us: number;
  p99us: number;
  minUs: number;
  maxUs: number;
  calls: number;
  diffsUs: number[];
}

async function main(): Promise<void> {
  const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
  console.log(
    `event latency: ${DOMAINS} domains, ≥ ${EVENTS} events per phase (${PHASES.join(', ')}), jobs held ${HOLD_MS} ms; ` +
      `load ${loadavg().map((l) => l.toFixed(2)).join(' ')}; addon ${process.env['STRATA_NATIVE_ADDON'] ?? 'native/build'}` +
      (process.env['STRATA_EVENT_IMPL'] ? `, STRATA_EVENT_IMPL=${process.env['STRATA_EVENT_IMPL']}` : ''),
  );
  await sweepStaleLabDomains(URI);
  const conn = await libvirt.open(URI);
  const labs: TestLab[] = [];
  const pythonProc = { current: null as ReturnType<typeof spawn> | null };
  try {
    for (let i = 0; i < DOMAINS; i++) {
      labs.push(await createTestLab(conn, { tag: `latency-${i}`, layers: 2, baseDataBytes: BASE_MIB * MiB, overlayDataBytes: MiB }));
    }
    const names = labs.map((l) => l.name);
    const results: PhaseResult[] = [];
    for (const phase of PHASES) {
      const strata = new Stream();
      const python = new Stream();
      const listener = await conn.domainEventRegisterAny(null, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, (e) => {
        const t = process.hrtime.bigint();
        if (names.includes(e.domainName)) strata.push(e.domainName, e.status, t);
      });
      const py = spawn(PYTHON, [join(here, 'event_listener.py'), '--uri', URI, '--domains', names.join(',')], { stdio: ['pipe', 'pipe', 'inherit'] });
      pythonProc.current = py;
      const ready = new Promise<void>((resolve, reject) => {
        py.once('exit', (code) => reject(new Error(`event_listener.py exited with ${String(code)}`)));
        readline.createInterface({ input: py.stdout! }).on('line', (line) => {
          const m = JSON.parse(line) as { ready?: boolean; dom?: string; status?: number; t?: number };
          if (m.ready) resolve();
          else if (m.dom !== undefined) python.push(m.dom, Number(m.status), BigInt(m.t ?? 0));
        });
      });
      await ready;

      let calls = 0;
      let busy = phase === 'busy';
      const caller = (async () => {
        const doms = labs.map((l) => l.domain);
        while (busy) {
          await doms[calls % doms.length]?.blockJobInfo(DISK, 0);
          calls++;
        }
      })();
      const perDomain = Math.ceil(EVENTS / DOMAINS);
      try {
        await Promise.all(labs.map((l) => jobs(l.domain, l.name, perDomain, strata, python)));
      } finally {
        busy = false;
        await caller;
        await conn.domainEventDeregisterAny(listener);
        py.stdin?.end();
      }

      const diffsUs: number[] = [];
      for (const name of names) {
        const a = strata.seen.get(name) ?? [];
        const b = python.seen.get(name) ?? [];
        for (let k = 0; k < Math.min(a.length, b.length); k++) {
          const x = a[k];
          const y = b[k];
          if (!x || !y) continue;
          if (x.status !== y.status) throw new Error(`event ${k} of ${name}: status ${x.status} here, ${y.status} in Python`);
          diffsUs.push(Number(x.t - y.t) / 1000);
        }
      }
      const sorted = [...diffsUs].sort((p, q) => p - q);
      const r: PhaseResult = {
        phase,
        events: sorted.length,
        p50us: percentile(sorted, 50),
        p99us: percentile(sorted, 99),
        minUs: sorted[0] ?? NaN,
        maxUs: sorted[sorted.length - 1] ?? NaN,
        calls,
        diffsUs,
      };
      results.push(r);
      const us = (x: number): string => String(Math.round(x) || 0);
      console.log(
        `${phase.padEnd(4)}: ${r.events} events, Strata − Python: p50 ${us(r.p50us)} µs, p99 ${us(r.p99us)} µs ` +
          `(min ${us(r.minUs)}, max ${us(r.maxUs)})${phase === 'busy' ? `; ${calls} blockJobInfo calls meanwhile` : ''}`,
      );
    }
    if (opts.json) await writeFile(opts.json, JSON.stringify({ addon: process.env['STRATA_NATIVE_ADDON'] ?? null, loadBefore, loadAfter: loadavg().map((l) => Number(l.toFixed(2))), results }, null, 2));
  } finally {
    pythonProc.current?.stdin?.end();
    for (const lab of labs) await lab.dispose().catch((err: unknown) => console.error(`cleanup of ${lab.name}: ${String(err)}`));
    await conn.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = err instanceof Disturbed ? 75 : 1;
});
