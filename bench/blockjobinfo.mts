// blockJobInfo calls per second: the Strata addon against libvirt-python, on the same running
// jobs. Starts N lab domains (each its own small backing chain), pulls on all of them throttled to
// 1 MiB/s so the jobs stay alive for the whole run, then measures, in interleaved rounds:
//   (a) Strata, one call at a time (await each), round-robin over the domains
//   (b) Strata, 8 calls in flight, loop k on domain k mod N
//   (c) libvirt-python, one call at a time, round-robin   (bench/blockjobinfo.py --mode seq)
//   (d) libvirt-python, 8 threads, thread k on domain k mod N (bench/blockjobinfo.py --mode threads)
// all with VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES, and prints the medians, the spread and the
// ratios against the targets. Two diagnostic rows explain the gap:
//   (e) libvirt-python one at a time with libvirt's event loop running in a thread, as the addon
//       always has it (--event-loop)
//   (f) the cost of a call that never leaves the process: virDomainGetState on test:///default,
//       Strata (a round trip to a worker thread and back) against libvirt-python (a plain C call)
// Exit status: 0 valid run; 1 failure; 75 disturbed (libvirtd restarted, or the jobs ended early
// because something else changed their speed): bench/run.sh then tries again. Every domain and image is removed at the end, also on failure or
// Ctrl-C (and the domains are autodestroyed if the process dies).
//
//   bash bench/run.sh                      # checks load and python3-libvirt, then runs this
//   node --import tsx bench/blockjobinfo.mts [--rounds 3] [--seconds 3] [--warmup 1]
//        [--domains 8] [--python /usr/bin/python3] [--uri qemu:///system] [--json FILE]
//        [--only strataSeq,strata8,pythonSeq,python8,pythonSeqLoop]
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createTestLab, libvirt, sweepStaleLabDomains, type Connection, type Domain } from '../test/lab/harness.ts';
import { MiB } from '../src/main/core/lab/images.ts';
import { removeLabDomain } from '../src/main/core/lab/lab.ts';

const here = dirname(fileURLToPath(import.meta.url));

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    domains: { type: 'string', default: '8' },
    python: { type: 'string', default: process.env['STRATA_BENCH_PYTHON'] || '/usr/bin/python3' },
    uri: { type: 'string', default: process.env['STRATA_TEST_URI'] || 'qemu:///system' },
    json: { type: 'string' },
    only: { type: 'string' },
  },
});

function positive(name: string, value: string | undefined): number {
  const n = Number(value);
  if (!(n > 0)) throw new Error(`--${name} must be a positive number, not ${value}`);
  return n;
}
const ROUNDS = Math.round(positive('rounds', opts.rounds));
const SECONDS = positive('seconds', opts.seconds);
const WARMUP = positive('warmup', opts.warmup);
const DOMAINS = Math.round(positive('domains', opts.domains));
const PYTHON = opts.python ?? '/usr/bin/python3';
const URI = opts.uri ?? 'qemu:///system';
const IN_FLIGHT = 8;
const DISK = 'vda';
const INFO_BYTES = libvirt.VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES;

// The jobs must outlive the run: 5 modes × (warm-up + rounds × seconds), plus Python's start-up
// the set-up of the domains after the first pull starts, and rounds measured again after a
// libvirtd restart, with a wide margin. Data copied at
// 1 MiB/s lasts that many seconds.
const runSeconds = 5 * ROUNDS * (WARMUP + SECONDS) + 2 * WARMUP + 5 * ROUNDS + 5 * DOMAINS;
const BASE_DATA_MIB = Math.ceil(runSeconds * 2 + 60);

interface Sample {
  calls: number;
  seconds: number;
  perSecond: number;
  noJob: number;
  /** CPU time of the calling process (all its threads) during the timed calls. */
  clientCpuSeconds: number;
  /** CPU time of libvirtd and the domains' QEMU processes during the timed calls. */
  serverCpuSeconds: number;
}

/** libvirtd's pid and the lab domains' QEMU pids, whose CPU time the samples report. */
let serverPids: number[] = [];

function procCpu(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      total += (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
    } catch {
      // gone: counts nothing
    }
  }
  return total;
}

/** Runs `body` and adds the client's and the server's CPU time to its counts. */
async function withCpu(body: () => Promise<{ calls: number; noJob: number; seconds: number }>): Promise<Sample> {
  const server0 = procCpu(serverPids);
  const client0 = process.cpuUsage();
  const { calls, noJob, seconds } = await body();
  const client = process.cpuUsage(client0);
  return {
    calls,
    noJob,
    seconds,
    perSecond: calls / seconds,
    clientCpuSeconds: (client.user + client.system) / 1e6,
    serverCpuSeconds: procCpu(serverPids) - server0,
  };
}

type ModeKey = 'strataSeq' | 'strata8' | 'pythonSeq' | 'python8' | 'pythonSeqLoop';
const MODES: { key: ModeKey; label: string }[] = [
  { key: 'strataSeq', label: '(a) Strata, one at a time' },
  { key: 'strata8', label: `(b) Strata, ${IN_FLIGHT} in flight` },
  { key: 'pythonSeq', label: '(c) libvirt-python, one at a time' },
  { key: 'python8', label: `(d) libvirt-python, ${IN_FLIGHT} threads` },
  { key: 'pythonSeqLoop', label: "(e) libvirt-python, one at a time, libvirt's event loop running" },
];

/** --only strataSeq,strata8,…: a subset of the modes, for quick diagnostics. */
const ACTIVE = opts.only ? MODES.filter(({ key }) => opts.only?.split(',').includes(key)) : MODES;
if (ACTIVE.length === 0) throw new Error(`--only names none of ${MODES.map(({ key }) => key).join(', ')}`);

/** Thrown when something outside the benchmark spoiled the run: worth another attempt. */
class Disturbed extends Error {}

/** A lost connection to libvirtd (restarted under us), as opposed to a failure of the call. */
function isConnectionLoss(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof libvirt.LibvirtError && err.domain === 'VIR_FROM_RPC') return true;
  return /client socket is closed|End of file while reading|Connection reset by peer|Failed to connect socket|Cannot recv data/.test(err.message);
}

/** Opens a connection, waiting up to `seconds` for a restarting libvirtd to answer again. */
async function openPatiently(seconds: number): Promise<Connection> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      return await libvirt.open(URI);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function daemonPid(): string {
  try {
    return readFileSync('/run/libvirtd.pid', 'utf8').trim();
  } catch {
    return '?';
  }
}

function isJob(info: object): boolean {
  return 'type' in info && (info as { type: number }).type === libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL;
}

/** (a): await each call, round-robin over the domains. */
function strataSeq(doms: readonly libvirtDomain[], seconds: number): Promise<Sample> {
  return withCpu(async () => {
    let calls = 0;
    let noJob = 0;
    const start = performance.now();
    const deadline = start + seconds * 1000;
    while (performance.now() < deadline) {
      const dom = doms[calls % doms.length];
      if (dom === undefined) throw new Error('no domain');
      const info = await dom.blockJobInfo(DISK, INFO_BYTES);
      calls++;
      if (!isJob(info)) noJob++;
    }
    return { calls, noJob, seconds: (performance.now() - start) / 1000 };
  });
}

/** (b): `width` loops, loop k awaiting calls on domain k mod N: `width` calls always in flight. */
function strataInFlight(doms: readonly libvirtDomain[], seconds: number, width: number): Promise<Sample> {
  return withCpu(async () => {
    let calls = 0;
    let noJob = 0;
    const start = performance.now();
    const deadline = start + seconds * 1000;
    const loop = async (k: number): Promise<void> => {
      const dom = doms[k % doms.length];
      if (dom === undefined) throw new Error('no domain');
      while (performance.now() < deadline) {
        const info = await dom.blockJobInfo(DISK, INFO_BYTES);
        calls++;
        if (!isJob(info)) noJob++;
      }
    };
    await Promise.all(Array.from({ length: width }, (_, k) => loop(k)));
    return { calls, noJob, seconds: (performance.now() - start) / 1000 };
  });
}

type libvirtDomain = Domain;

interface PythonResult extends Sample {
  libvirtPython: string;
  python: string;
}

function python(
  names: readonly string[],
  mode: 'seq' | 'threads' | 'state',
  seconds: number,
  warmup: number,
  extra: { eventLoop?: boolean; uri?: string; threads?: number } = {},
): Promise<PythonResult> {
  const args = [join(here, 'blockjobinfo.py'), '--uri', extra.uri ?? URI, '--domains', names.join(','), '--mode', mode, '--seconds', String(seconds), '--warmup', String(warmup)];
  if (extra.eventLoop) args.push('--event-loop');
  if (extra.threads) args.push('--threads', String(extra.threads));
  if (serverPids.length > 0 && !extra.uri) args.push('--server-pids', serverPids.join(','));
  return new Promise((resolve, reject) => {
    execFile(PYTHON, args, { timeout: (seconds + warmup + 60) * 1000 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`${PYTHON} ${args.join(' ')} failed: ${String(stderr).trim() || error.message}`));
        return;
      }
      try {
        resolve(JSON.parse(String(stdout)) as PythonResult);
      } catch {
        reject(new Error(`blockjobinfo.py printed no JSON: ${String(stdout).slice(0, 200)}`));
      }
    });
  });
}

/**
 * The reference people reach for in scripts: `virsh blockjob DOM vda --info`, one process per
 * call (connect, one call, disconnect), one after another over the domains.
 */
async function virshPerSecond(names: readonly string[], seconds: number): Promise<{ perSecond: number; calls: number }> {
  const run = (name: string): Promise<void> =>
    new Promise((resolve, reject) => {
      execFile('virsh', ['-c', URI, 'blockjob', name, DISK, '--info', '--bytes'], (error) => (error ? reject(error) : resolve()));
    });
  let calls = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) await run(names[calls++ % names.length] ?? '');
  return { perSecond: calls / ((performance.now() - start) / 1000), calls };
}

/** (f): Strata's cost of one call that never leaves the process (test:///default). */
async function strataStateOverhead(seconds: number): Promise<number> {
  const c = await libvirt.open('test:///default');
  try {
    const dom = await c.lookupByName('test');
    for (const end = performance.now() + 300; performance.now() < end; ) await dom.state();
    let calls = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) {
      await dom.state();
      calls++;
    }
    return calls / ((performance.now() - start) / 1000);
  } finally {
    await c.close();
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

function versionString(v: number): string {
  return `${Math.floor(v / 1_000_000)}.${Math.floor(v / 1000) % 1000}.${v % 1000}`;
}

async function checkJobsAlive(doms: readonly libvirtDomain[]): Promise<string[]> {
  const dead: string[] = [];
  for (const d of doms) {
    if (!isJob(await d.blockJobInfo(DISK, INFO_BYTES))) dead.push(d.name());
  }
  return dead;
}

async function main(): Promise<number> {
  const load0 = loadavg();
  console.log(
    `blockJobInfo benchmark: ${DOMAINS} domains, ${ROUNDS} rounds × ${SECONDS} s per mode after ${WARMUP} s warm-up; ` +
      `pulls at 1 MiB/s over ${BASE_DATA_MIB} MiB each; load ${load0.map((l) => l.toFixed(2)).join(' ')}`,
  );
  await sweepStaleLabDomains(URI);
  let conn: Connection = await openPatiently(60);
  // Not autodestroyed: other people's tests restart libvirtd, which drops this connection (and
  // would destroy autodestroy domains with it). Domains and their jobs survive a restart, so an
  // interrupted round is measured again on a new connection. Cleanup is ours (finally, signals);
  // a killed run's domains are swept by the test harness's sweeper (strata-test-<dead pid>-…).
  const labs: { name: string; dir: string }[] = [];
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      for (const lab of labs) {
        try {
          await removeLabDomain(conn, lab);
        } catch {
          // The connection may be dead (libvirtd restarted): try once more on a new one.
          try {
            if (!conn.isClosed()) await conn.close().catch(() => undefined);
            conn = await openPatiently(60);
            await removeLabDomain(conn, lab);
          } catch (err) {
            console.error(`cleanup of ${lab.name}: ${String(err)}`);
          }
        }
      }
      if (!conn.isClosed()) await conn.close().catch(() => undefined);
    })();
    return cleaning;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`\n${signal}: removing the lab domains and images`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    process.stdout.write('starting lab domains and pulls: ');
    for (let i = 0; i < DOMAINS; i++) {
      const lab = await createTestLab(conn, {
        tag: `bench-${i}`,
        autoDestroy: false,
        layers: 2,
        virtualSize: (BASE_DATA_MIB + 64) * MiB,
        baseDataBytes: BASE_DATA_MIB * MiB,
        overlayDataBytes: MiB,
      });
      labs.push({ name: lab.name, dir: lab.dir });
      await lab.domain.blockPull(DISK, MiB, libvirt.VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES);
      process.stdout.write(`${i + 1} `);
    }
    console.log('');
    const names = labs.map((l) => l.name);
    let doms: libvirtDomain[] = [];
    const reconnect = async (): Promise<void> => {
      if (!conn.isClosed()) await conn.close().catch(() => undefined);
      conn = await openPatiently(120);
      doms = [];
      for (const name of names) doms.push(await conn.lookupByName(name));
    };
    await reconnect();
    const qemuPid = (name: string): number => Number(readFileSync(`/run/libvirt/qemu/${name}.pid`, 'utf8').trim());
    const refreshPids = (): void => {
      serverPids = [Number(daemonPid()), ...names.map(qemuPid)].filter((p) => p > 0);
    };
    refreshPids();

    // libvirtd and the guests use some CPU without any call (the pulls, the idle guests, other
    // people's domains on this daemon): measured here and subtracted from the samples.
    const idle0 = procCpu(serverPids);
    await new Promise((r) => setTimeout(r, 2000));
    const idleServerCpuPerSecond = (procCpu(serverPids) - idle0) / 2;

    const libVersion = versionString(await conn.getLibVersion());
    const qemuVersion = versionString(await conn.getVersion());

    // Warm-up: both Strata modes once (Python warms up inside each of its runs, which open their
    // own connection).
    await strataSeq(doms, WARMUP);
    await strataInFlight(doms, WARMUP, IN_FLIGHT);

    const samples: Record<ModeKey, Sample[]> = { strataSeq: [], strata8: [], pythonSeq: [], python8: [], pythonSeqLoop: [] };
    let pyInfo = { libvirtPython: '?', python: '?' };
    let interrupted = 0;
    for (let r = 0; r < ROUNDS; ) {
      const pid = daemonPid();
      try {
        const runners: Record<ModeKey, () => Promise<Sample>> = {
          strataSeq: () => strataSeq(doms, SECONDS),
          strata8: () => strataInFlight(doms, SECONDS, IN_FLIGHT),
          pythonSeq: () => python(names, 'seq', SECONDS, WARMUP),
          python8: () => python(names, 'threads', SECONDS, WARMUP, { threads: IN_FLIGHT }),
          pythonSeqLoop: () => python(names, 'seq', SECONDS, WARMUP, { eventLoop: true }),
        };
        const round: Partial<Record<ModeKey, Sample>> = {};
        for (const { key } of ACTIVE) round[key] = await runners[key]();
        if (daemonPid() !== pid) throw new Disturbed(`libvirtd restarted during round ${r + 1}`);
        for (const { key } of ACTIVE) {
          const sample = round[key];
          if (sample) samples[key].push(sample);
        }
        const py = (round.pythonSeq ?? round.python8) as PythonResult | undefined;
        if (py) pyInfo = { libvirtPython: py.libvirtPython, python: py.python };
        console.log(`round ${r + 1}: ` + ACTIVE.map(({ key }) => `${key} ${Math.round(round[key]?.perSecond ?? NaN)}/s`).join(', '));
        r++;
      } catch (err) {
        if (!(err instanceof Disturbed) && !isConnectionLoss(err) && daemonPid() === pid) throw err;
        if (++interrupted > 5) throw new Disturbed(`libvirtd went away ${interrupted} times`);
        console.log(`round ${r + 1} interrupted (libvirtd restarted by someone else?): measuring it again`);
        await reconnect();
        refreshPids();
        const dead = await checkJobsAlive(doms);
        if (dead.length > 0) throw new Disturbed(`jobs ended while libvirtd was away: ${dead.join(', ')}`);
      }
    }
    const dead = await checkJobsAlive(doms);
    const virsh = await virshPerSecond(names, SECONDS);
    // (f), after the jobs were checked: no daemon, no QEMU, only the call machinery.
    const strataState = await strataStateOverhead(2);
    const pythonState = (await python(['test'], 'state', 2, 0.3, { uri: 'test:///default' })).perSecond;
    const noJobCalls = MODES.reduce((sum, { key }) => sum + samples[key].reduce((s, x) => s + x.noJob, 0), 0);
    const load1 = loadavg();

    const rows = ACTIVE.map(({ key, label }) => {
      const rates = samples[key].map((s) => s.perSecond);
      const med = median(rates);
      const min = Math.min(...rates);
      const max = Math.max(...rates);
      const cpuPerCall = (f: (x: Sample) => number): number =>
        median(samples[key].map((x) => (f(x) / x.calls) * 1e6));
      return {
        key,
        label,
        median: med,
        min,
        max,
        spreadPct: ((max - min) / med) * 100,
        usPerCall: 1e6 / med,
        clientCpuUs: cpuPerCall((x) => x.clientCpuSeconds),
        serverCpuUs: cpuPerCall((x) => Math.max(0, x.serverCpuSeconds - idleServerCpuPerSecond * x.seconds)),
      };
    });
    const byKey = (k: ModeKey): number => rows.find((row) => row.key === k)?.median ?? NaN;
    const seqRatio = byKey('strataSeq') / byKey('pythonSeq');
    const inFlightRatio = byKey('strata8') / byKey('pythonSeq');
    const target1 = seqRatio >= 1;
    const target2 = inFlightRatio >= 1.5;
    const verdict = (met: boolean, ratio: number): string => (Number.isNaN(ratio) ? 'not measured (--only)' : met ? 'met' : 'MISSED');

    console.log('');
    console.log(`| mode | median calls/s | min–max | spread | µs/call | client CPU µs/call | libvirtd+QEMU CPU µs/call (above idle) |`);
    console.log(`|---|---:|---:|---:|---:|---:|---:|`);
    for (const row of rows) {
      console.log(
        `| ${row.label} | ${Math.round(row.median)} | ${Math.round(row.min)}–${Math.round(row.max)} | ${row.spreadPct.toFixed(1)} % | ` +
          `${row.usPerCall.toFixed(0)} | ${row.clientCpuUs.toFixed(0)} | ${row.serverCpuUs.toFixed(0)} |`,
      );
    }
    console.log('');
    console.log(`Strata one-at-a-time / libvirt-python one-at-a-time = ${seqRatio.toFixed(3)} (target ≥ 1.00): ${verdict(target1, seqRatio)}`);
    console.log(`Strata ${IN_FLIGHT}-in-flight / libvirt-python one-at-a-time = ${inFlightRatio.toFixed(3)} (target ≥ 1.50): ${verdict(target2, inFlightRatio)}`);
    console.log(
      `(for reference: libvirt-python ${IN_FLIGHT} threads / one-at-a-time = ${(byKey('python8') / byKey('pythonSeq')).toFixed(2)}; ` +
        `Strata ${IN_FLIGHT}-in-flight / libvirt-python ${IN_FLIGHT} threads = ${(byKey('strata8') / byKey('python8')).toFixed(2)}; ` +
        `Strata one-at-a-time / libvirt-python one-at-a-time with the event loop = ${(byKey('strataSeq') / byKey('pythonSeqLoop')).toFixed(2)})`,
    );
    console.log(`\`virsh blockjob --info\`, a process per call: ${virsh.perSecond.toFixed(1)}/s`);
    console.log(
      `(f) a call that never leaves the process (virDomainGetState on test:///default, one at a time): ` +
        `Strata ${Math.round(strataState)}/s = ${(1e6 / strataState).toFixed(1)} µs a call; ` +
        `libvirt-python ${Math.round(pythonState)}/s = ${(1e6 / pythonState).toFixed(1)} µs a call`,
    );
    const facts = {
      date: new Date().toISOString(),
      nproc: cpus().length,
      cpu: cpus()[0]?.model ?? '?',
      libvirt: libVersion,
      qemu: qemuVersion,
      node: process.version,
      python: pyInfo.python,
      libvirtPython: pyInfo.libvirtPython,
      loadBefore: load0.map((l) => Number(l.toFixed(2))),
      loadAfter: load1.map((l) => Number(l.toFixed(2))),
      idleServerCpuPerSecond: Number(idleServerCpuPerSecond.toFixed(3)),
    };
    console.log(
      `machine: ${facts.nproc} CPUs (${facts.cpu}), libvirt ${facts.libvirt}, QEMU ${facts.qemu}, node ${facts.node}, ` +
        `python ${facts.python}, libvirt-python ${facts.libvirtPython}, ` +
        `load ${facts.loadBefore.join(' ')} → ${facts.loadAfter.join(' ')}, ` +
        `libvirtd+QEMU at rest ${(idleServerCpuPerSecond * 100).toFixed(0)} % of a CPU, ${facts.date}`,
    );
    let valid = true;
    if (dead.length > 0 || noJobCalls > 0) {
      valid = false;
      console.log(
        `INVALID RUN: jobs ended before the end (${dead.join(', ') || `${noJobCalls} calls saw no job`}). ` +
          'Something raised their speed (a Strata engine under test re-applies its budget to every job it discovers), or the data was too small.',
      );
    }
    // The benchmark itself keeps both CPUs busy in the 8-way modes, so only the load before it
    // says whether the machine was quiet.
    if ((load0[0] ?? 0) > 1) console.log('note: the machine was not quiet when the run began (load above); repeat when it is');
    if (opts.json) {
      const overhead = { strataStatePerSecond: strataState, pythonStatePerSecond: pythonState };
      await writeFile(opts.json, JSON.stringify({ facts, rows, samples, overhead, virsh, seqRatio, inFlightRatio, target1, target2, valid }, null, 2));
    }
    return valid ? 0 : 75;
  } catch (err) {
    if (isConnectionLoss(err)) throw new Disturbed(`lost libvirtd during the run: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

process.exitCode = await main().catch((err: unknown) => {
  if (err instanceof Disturbed) {
    console.error(`blockjobinfo benchmark disturbed: ${err.message}`);
    return 75;
  }
  console.error('blockjobinfo benchmark failed:', err);
  return 1;
});
