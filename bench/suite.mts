// The benchmark suite's one entry (bash bench/run.sh, npm run bench): runs each benchmark in a
// process of its own after waiting for a quiet machine, tries again one that something outside
// disturbed (exit status 75), and writes bench/results/latest.json and bench/results/latest.md
// with the machine they ran on. `--only a,b` runs some; their results replace those of the same
// name in latest.json, and every result keeps its own date and load.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { load, round, type BenchResult, type Figure } from './lib/report.mts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = dirname(here);
const { values: opts } = parseArgs({
  options: {
    only: { type: 'string' },
    python: { type: 'string', default: process.env['STRATA_BENCH_PYTHON'] || '/usr/bin/python3' },
    // 2 minutes keep the whole suite under 15; the 10 on request.
    'renderer-minutes': { type: 'string', default: '2' },
    // 3 minutes by default; 30 or more to judge a leak.
    'soak-minutes': { type: 'string', default: '3' },
  },
});
const PYTHON = opts.python ?? '/usr/bin/python3';

interface Bench {
  name: string;
  /** The process to run; it writes a BenchResult to `json`, or a file `convert` turns into one. */
  argv: (json: string) => string[];
  convert?: (raw: unknown) => Omit<BenchResult, 'name'>;
}

const tsx = (script: string, ...args: string[]): string[] => ['node', '--expose-gc', '--import', 'tsx', join(here, script), ...args];

const BENCHES: Bench[] = [
  { name: 'calls', argv: (json) => tsx('blockjobinfo.mts', '--python', PYTHON, '--json', json), convert: convertCalls },
  { name: 'latency', argv: (json) => tsx('event-latency.mts', '--python', PYTHON, '--json', json), convert: convertLatency },
  { name: 'paint', argv: (json) => tsx('paint.mts', '--json', json) },
  { name: 'freshness', argv: (json) => tsx('freshness.mts', '--python', PYTHON, '--json', json) },
  { name: 'scale', argv: (json) => tsx('scale.mts', '--python', PYTHON, '--json', json) },
  { name: 'throttle', argv: (json) => tsx('throttle.mts', '--json', json) },
  { name: 'chaincheck', argv: (json) => tsx('chain-check.mts', '--json', json) },
  { name: 'renderer', argv: (json) => tsx('renderer.mts', '--minutes', opts['renderer-minutes'] ?? '2', '--json', json) },
  { name: 'startup', argv: (json) => tsx('startup.mts', '--json', json) },
  { name: 'soak', argv: (json) => tsx('soak.mts', '--minutes', opts['soak-minutes'] ?? '3', '--json', json) },
];

interface CallsJson {
  facts: { loadBefore: number[]; loadAfter: number[] };
  rows: { key: string; label: string; median: number; min: number; max: number; spreadPct: number; clientCpuUs: number }[];
  overhead: { strataStatePerSecond: number; pythonStatePerSecond: number };
  virsh?: { perSecond: number };
  seqRatio: number;
  inFlightRatio: number;
  valid: boolean;
}

function convertCalls(raw: unknown): Omit<BenchResult, 'name'> {
  const r = raw as CallsJson;
  const row = (k: string) => r.rows.find((x) => x.key === k);
  const spread = (k: string): string => {
    const x = row(k);
    return x ? `${Math.round(x.min)}–${Math.round(x.max)}/s, spread ${x.spreadPct.toFixed(1)} %` : '';
  };
  const figures: Figure[] = [
    {
      what: 'blockJobInfo one at a time, Strata / libvirt-python',
      value: r.seqRatio,
      unit: '×',
      spread: `Strata ${Math.round(row('strataSeq')?.median ?? NaN)}/s (${spread('strataSeq')})`,
      against: `libvirt-python ${Math.round(row('pythonSeq')?.median ?? NaN)}/s (${spread('pythonSeq')})`,
      target: '≥ 1.0',
      met: r.seqRatio >= 1,
    },
    {
      what: '8 in flight, Strata / libvirt-python one at a time',
      value: r.inFlightRatio,
      unit: '×',
      spread: `Strata ${Math.round(row('strata8')?.median ?? NaN)}/s (${spread('strata8')})`,
      against: `libvirt-python 8 threads ${Math.round(row('python8')?.median ?? NaN)}/s`,
      target: '≥ 1.5',
      met: r.inFlightRatio >= 1.5,
    },
  ];
  const strataUs = 1e6 / r.overhead.strataStatePerSecond;
  const pythonUs = 1e6 / r.overhead.pythonStatePerSecond;
  figures.push({
    what: 'a call that never leaves the process (virDomainGetState on test:///default), one at a time: the hand-off to a worker and back',
    value: strataUs,
    unit: 'µs a call',
    against: `libvirt-python ${pythonUs.toFixed(1)} µs (a plain C call): the hand-off costs ${(strataUs - pythonUs).toFixed(1)} µs`,
  });
  if (r.virsh) {
    figures.push({
      what: '`virsh blockjob --info`, one process per call (reference)',
      value: r.virsh.perSecond,
      unit: 'calls/s',
      against: `Strata one at a time is ${((row('strataSeq')?.median ?? NaN) / r.virsh.perSecond).toFixed(0)}× as many`,
    });
  }
  return {
    method: 'bench/blockjobinfo.mts: 8 lab domains with pulls throttled to 1 MiB/s; modes in alternating rounds, medians',
    loadBefore: r.facts.loadBefore,
    loadAfter: r.facts.loadAfter,
    figures,
    notes: r.valid ? [] : ['INVALID: the jobs ended before the run did'],
    detail: raw,
  };
}

interface LatencyJson {
  loadBefore?: number[];
  loadAfter?: number[];
  results: { phase: string; events: number; p50us: number; p99us: number; minUs: number; maxUs: number }[];
}

function convertLatency(raw: unknown): Omit<BenchResult, 'name'> {
  const r = raw as LatencyJson;
  return {
    method: "bench/event-latency.mts: BLOCK_JOB_2 events of cancelled pulls, the addon's JS callback against libvirt-python's on the same libvirtd",
    loadBefore: r.loadBefore ?? [],
    loadAfter: r.loadAfter ?? [],
    figures: r.results.map((p) => ({
      what: `event to JS callback, ${p.phase} (Strata − libvirt-python, ${p.events} events)`,
      value: p.p99us / 1000,
      unit: 'ms p99',
      spread: `p50 ${(p.p50us / 1000).toFixed(3)} ms, min ${(p.minUs / 1000).toFixed(2)}, max ${(p.maxUs / 1000).toFixed(2)} ms`,
      target: 'p99 < 2 ms',
      met: p.p99us < 2000,
    })),
    notes: [],
    detail: raw,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function otherTests(): number {
  try {
    return execFileSync('pgrep', ['-f', 'node .*--test'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

/** Fraction of all CPUs busy over `ms` (from /proc/stat). */
async function busyFraction(ms: number): Promise<number> {
  const read = (): { busy: number; total: number } => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    const total = f.reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: total - idle, total };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return (b.busy - a.busy) / Math.max(1, b.total - a.total);
}

/**
 * With 2 cores, other guests and test suites change every figure: wait until the CPUs are less
 * than a third busy over 5 s and no other test runs. Not the load average: it lags by a minute,
 * so the benchmark before would hold every next one back.
 */
async function waitQuiet(): Promise<string | null> {
  const max = Number(process.env['STRATA_BENCH_WAIT'] ?? 300);
  const start = Date.now();
  for (let announced = false; ; announced = true) {
    const busy = await busyFraction(5000);
    const others = otherTests();
    if (busy < 1 / 3 && others === 0) return null;
    const what = `CPUs ${(busy * 100).toFixed(0)} % busy, load ${load().join(' ')}, ${others} test processes`;
    if (Date.now() - start >= max * 1000) return `still busy after ${max} s (${what}): ran anyway, the figures are suspect`;
    if (!announced) console.log(`== waiting for a quiet machine (${what})`);
    await sleep(5000);
  }
}

function run(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd ?? 'node', args, { cwd: repo, stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 130 : 1));
    });
  });
}

async function runBench(bench: Bench, tmp: string): Promise<BenchResult> {
  const attempts = Number(process.env['STRATA_BENCH_ATTEMPTS'] ?? 3);
  const json = join(tmp, `${bench.name}.json`);
  const notes: string[] = [];
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const busy = await waitQuiet();
    console.log(`\n== ${bench.name} (attempt ${attempt}, load ${load().join(' ')})`);
    const status = await run(bench.argv(json));
    if (status === 0) {
      const raw = JSON.parse(await readFile(json, 'utf8')) as unknown;
      const result: BenchResult = bench.convert ? { name: bench.name, ...bench.convert(raw) } : (raw as BenchResult);
      if (busy) result.notes.push(busy);
      result.notes.push(...notes);
      return result;
    }
    if (status !== 75) throw new Error(`${bench.name} failed (exit status ${status})`);
    notes.push(`attempt ${attempt} was disturbed from outside (libvirtd restarted or jobs sped up) and measured again`);
  }
  throw new Error(`${bench.name} was disturbed ${attempts} times`);
}

function version(cmd: string, args: string[], pattern: RegExp): string {
  try {
    return pattern.exec(execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

function machine(): Record<string, unknown> {
  return {
    date: new Date().toISOString(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? '?',
    memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    loadBefore: load(),
    node: process.version,
    libvirt: version('virsh', ['--version'], /^(\S+)/),
    qemu: version('qemu-system-x86_64', ['--version'], /version (\S+)/),
    python: version(PYTHON, ['--version'], /Python (\S+)/),
    libvirtPython: version(PYTHON, ['-c', 'import libvirt; v = libvirt.getVersion(); print(f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}")'], /(\S+)/),
    chromium: version(process.env['STRATA_CHROMIUM'] ?? '/usr/bin/chromium', ['--version'], /Chromium (\S+)/),
    commit: version('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], /(\S+)/),
  };
}

function verdict(f: Figure): string {
  return f.met === true ? 'met' : f.met === false ? '**missed**' : '–';
}

function markdown(results: BenchResult[], m: Record<string, unknown>): string {
  const lines = [
    `Machine: ${String(m['cpus'])} CPUs (${String(m['cpuModel'])}), ${String(m['memoryGiB'])} GiB, Linux ${String(m['kernel'])}; ` +
      `node ${String(m['node'])}, libvirt ${String(m['libvirt'])}, QEMU ${String(m['qemu'])}, Python ${String(m['python'])} with libvirt-python ` +
      `${String(m['libvirtPython'])}, Chromium ${String(m['chromium'])}; commit ${String(m['commit'])}.`,
    '',
    '| benchmark | what | value | spread | against | target | verdict | load before → after |',
    '|---|---|---:|---|---|---|---|---|',
  ];
  for (const r of results) {
    for (const f of r.figures) {
      lines.push(
        `| ${r.name} | ${f.what} | ${round(f.value)} ${f.unit} | ${f.spread ?? ''} | ${f.against ?? ''} | ${f.target ?? ''} | ${verdict(f)} | ` +
          `${r.loadBefore[0] ?? '?'} → ${r.loadAfter[0] ?? '?'} |`,
      );
    }
  }
  const notes = results.flatMap((r) => r.notes.map((n) => `- ${r.name}: ${n}`));
  if (notes.length > 0) lines.push('', ...notes);
  return lines.join('\n') + '\n';
}

async function main(): Promise<number> {
  const wanted = opts.only?.split(',').map((s) => s.trim()) ?? BENCHES.map((b) => b.name);
  const unknown = wanted.filter((w) => !BENCHES.some((b) => b.name === w));
  if (unknown.length > 0) throw new Error(`--only: no benchmark ${unknown.join(', ')} (there are ${BENCHES.map((b) => b.name).join(', ')})`);
  const resultsDir = join(here, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const latest = join(resultsDir, 'latest.json');
  let previous: BenchResult[] = [];
  try {
    previous = (JSON.parse(await readFile(latest, 'utf8')) as { results: BenchResult[] }).results;
  } catch {
    // first run
  }
  const m = machine();
  const tmp = await mkdtemp(join(tmpdir(), 'strata-bench-'));
  const started = Date.now();
  let failed = 0;
  const fresh: BenchResult[] = [];
  const order = BENCHES.map((b) => b.name);
  // Written after each benchmark, so an interrupted suite keeps what it measured.
  const save = async (): Promise<string> => {
    const merged = [...previous.filter((p) => !fresh.some((f) => f.name === p.name)), ...fresh].sort(
      (a, b) => order.indexOf(a.name) - order.indexOf(b.name),
    );
    await writeFile(latest, JSON.stringify({ machine: m, minutes: (Date.now() - started) / 60_000, results: merged }, null, 2) + '\n');
    const md = markdown(merged, m);
    await writeFile(join(resultsDir, 'latest.md'), md);
    return md;
  };
  try {
    for (const bench of BENCHES.filter((b) => wanted.includes(b.name))) {
      try {
        const r = await runBench(bench, tmp);
        fresh.push({ ...r, date: new Date().toISOString() } as BenchResult);
        await save();
      } catch (err) {
        failed++;
        console.error(`== ${bench.name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const md = await save();
  console.log(`\n${md}\nwritten: bench/results/latest.json, bench/results/latest.md (${((Date.now() - started) / 60_000).toFixed(1)} minutes)`);
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  return 2;
});
