// Memory under job churn: the headless server driven as a client drives it, on lab domains (the
// test harness's, strata-test-…: on a shared host, a practice lab, strata-lab-N, is anyone's to
// remove from their window), each in a loop of
//   disk.snapshot → job.start pull at 1 MiB/s → job.setSpeed 2 MiB/s → job.abort → (cancelled)
//   → job.start active commit of the new layer, pivot at ready, its file deleted → (completed)
//   → history.list
// while the server's resident memory (VmRSS, before and after a full GC) and its JS heap after
// the GC are sampled. The server runs as `node --inspect=127.0.0.1:0 out/main/serve.js`: the
// samples, the GC and the heap snapshots go through the inspector (Chrome DevTools Protocol), so
// the product has no hook of its own for them. No Runtime.enable: the inspector then keeps no
// console messages of its own.
//
// Judge: after the warm-up (the first third), the median of the last third within 5 % of the
// median of the middle third, for RSS and for the heap.
//
//   node --import tsx bench/soak.mts [--minutes 3] [--domains 2] [--sample-seconds S]
//        [--round-seconds 2.5] [--snapshots [--snapshot-dir DIR]] [--malloc-arena-max N] [--trim]
//        [--empty-history] [--no-build] [--json FILE]
//
// The server starts with its job history at its cap of 1,000 jobs (--empty-history: without),
// so the history filling up, which is growth by design, is not taken for a leak.
// --snapshots: a heap snapshot at the end of the warm-up and one at the end, and the constructors
//   whose count or size grew most between them (--snapshot-dir DIR keeps both files for DevTools'
//   Comparison view). Taking a snapshot raises the server's RSS by tens of MiB for good (the
//   allocator keeps what the snapshot used), so RSS is judged only in runs without them.
// --round-seconds S: each domain starts a round at most every S seconds (default 2.5: the pace of
//   about 5 calls a second over two domains); 0 runs them back to back.
// --malloc-arena-max N: glibc's MALLOC_ARENA_MAX for the server (fewer arenas, less high-water).
// --trim: after the last sample, glibc's malloc_trim(0) in the server through gdb, and RSS again:
//   what it gives back was free memory the allocator held, not live memory.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import type { Disk, Job } from '../src/shared/model.ts';
import { MiB } from '../src/main/core/lab/images.ts';
import { createTestLab, libvirt, type TestLab } from '../test/lab/harness.ts';
import { build, repo } from './lib/browser.mts';
import { load, median, procRssMiB, writeResult } from './lib/report.mts';
import { WsClient } from './lib/ws-client.mts';

const { values: opts } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    domains: { type: 'string', default: '2' },
    'sample-seconds': { type: 'string' },
    'round-seconds': { type: 'string', default: '2.5' },
    'snapshot-dir': { type: 'string' },
    snapshots: { type: 'boolean', default: false },
    'malloc-arena-max': { type: 'string' },
    trim: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    'empty-history': { type: 'boolean', default: false },
    uri: { type: 'string', default: process.env['STRATA_TEST_URI'] ?? 'qemu:///system' },
    json: { type: 'string' },
  },
});
const MINUTES = Number(opts.minutes);
const DOMAINS = Number(opts.domains);
// About 12 samples in a short run, one every 30 s in a long one.
const SAMPLE_MS = Number(opts['sample-seconds'] ?? Math.min(30, Math.max(10, (MINUTES * 60) / 12))) * 1000;
const ROUND_MS = Number(opts['round-seconds']) * 1000;
if (!(MINUTES > 0) || !(DOMAINS >= 1) || !(SAMPLE_MS >= 1000)) throw new Error('--minutes > 0, --domains ≥ 1 and --sample-seconds ≥ 1 are needed');
const HOST = 'default';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A Chrome DevTools Protocol session on the server's inspector. */
class Inspector {
  readonly #ws: WebSocket;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  onEvent: (method: string, params: unknown) => void = () => undefined;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: unknown };
      if (m.id === undefined) return this.onEvent(m.method ?? '', m.params);
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (m.error) p?.reject(new Error(m.error.message));
      else p?.resolve(m.result);
    });
  }

  static open(url: string): Promise<Inspector> {
    const ws = new WebSocket(url, { maxPayload: 1024 * MiB });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new Inspector(ws)));
      ws.once('error', reject);
    });
  }

  send<T>(method: string, params: object = {}): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: (r) => resolve(r as T), reject });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** process.memoryUsage() after a full collection (twice: the first may only free weak refs' targets). */
  async memoryAfterGc(): Promise<{ rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number }> {
    await this.send('HeapProfiler.collectGarbage');
    await this.send('HeapProfiler.collectGarbage');
    const r = await this.send<{ result: { value: string } }>('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    return JSON.parse(r.result.value) as { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  }

  /** A heap snapshot, summed per node type and constructor (or closure) name. */
  async snapshot(label: string): Promise<Map<string, { count: number; size: number }>> {
    const chunks: string[] = [];
    this.onEvent = (method, params) => {
      if (method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push((params as { chunk: string }).chunk);
    };
    await this.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false, captureNumericValue: false });
    this.onEvent = () => undefined;
    const dir = opts['snapshot-dir'];
    if (dir) await writeFile(join(dir, `soak-${label}.heapsnapshot`), chunks.join(''));
    const snap = JSON.parse(chunks.join('')) as {
      snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
      nodes: number[];
      strings: string[];
    };
    const fields = snap.snapshot.meta.node_fields;
    const types = snap.snapshot.meta.node_types[0];
    const [iType, iName, iSize] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];
    const byName = new Map<string, { count: number; size: number }>();
    for (let i = 0; i < snap.nodes.length; i += fields.length) {
      const type = types[snap.nodes[i + iType] ?? 0] ?? '?';
      const name = type === 'object' || type === 'closure' || type === 'native' ? (snap.strings[snap.nodes[i + iName] ?? 0] ?? '?') : '';
      const key = `${type}${name ? ` ${name.slice(0, 80)}` : ''}`;
      const e = byName.get(key) ?? { count: 0, size: 0 };
      e.count += 1;
      e.size += snap.nodes[i + iSize] ?? 0;
      byName.set(key, e);
    }
    return byName;
  }

  close(): void {
    this.#ws.close();
  }
}

/**
 * The history at its cap (1,000 jobs), as a user's is after a while: a history filling up is
 * growth by design, and a run would otherwise spend its first minutes filling it.
 */
function fullHistory(): Job[] {
  const t = Date.now() - 86_400_000;
  return Array.from({ length: 1000 }, (_, i): Job => {
    const ref = { hostId: HOST, domain: `strata-lab-${(i % 2) + 1}`, disk: 'vda' };
    const pull = i % 2 === 0;
    return {
      id: `${ref.hostId}/${ref.domain}/${ref.disk}@${t + i * 1000}`,
      ...ref,
      type: pull ? 'pull' : 'active-commit',
      phase: pull ? 'cancelled' : 'completed',
      cur: pull ? 524_288 : 1_048_576,
      end: pull ? 1_073_741_824 : 1_048_576,
      progress: pull ? 524_288 / 1_073_741_824 : 1,
      bandwidthBytesPerSec: pull ? 2 * MiB : 0,
      requestedBandwidthBytesPerSec: pull ? 2 * MiB : 0,
      afterReady: pull ? null : 'pivot',
      rateBytesPerSec: null,
      etaSeconds: null,
      startedAt: t + i * 1000,
      updatedAt: t + i * 1000 + 400,
      endedAt: t + i * 1000 + 400,
      origin: 'strata',
      outcome: pull ? 'aborted' : 'completed: the disk now uses its base',
      leftover: null,
    };
  });
}

interface Server {
  child: ChildProcess;
  url: string;
  inspectorUrl: string;
  stop(): Promise<void>;
}

async function startServer(uri: string): Promise<Server> {
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-soak-data-'));
  if (!opts['empty-history']) await writeFile(join(dataDir, 'history.json'), JSON.stringify({ version: 1, jobs: fullHistory() }));
  const env: NodeJS.ProcessEnv = { ...process.env, STRATA_DATA_DIR: dataDir };
  if (opts['malloc-arena-max']) env['MALLOC_ARENA_MAX'] = opts['malloc-arena-max'];
  const child = spawn('node', ['--inspect=127.0.0.1:0', join(repo, 'out/main/serve.js'), '--uri', uri, '--port', '0'], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let out = '';
  let err = '';
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const [url, inspectorUrl] = await new Promise<[string, string]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve printed no Listening line in 60 s:\n${out}${err}`)), 60_000);
      const check = (): void => {
        const page = /^Listening: (http:\/\/\S+)$/m.exec(out)?.[1];
        const inspector = /Debugger listening on (ws:\/\/\S+)/.exec(err)?.[1];
        if (page && inspector) {
          clearTimeout(timer);
          resolve([page, inspector]);
        }
      };
      child.stdout?.on('data', (c: Buffer) => ((out += c.toString()), check()));
      child.stderr?.on('data', (c: Buffer) => ((err += c.toString()), check()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`serve exited with ${code}:\n${out}${err}`));
      });
    });
    // Keep reading, so a full pipe never blocks the server; warnings are shown as they come.
    child.stdout?.removeAllListeners('data').resume();
    child.stderr?.removeAllListeners('data').on('data', (c: Buffer) => process.stderr.write(`  serve: ${c.toString()}`));
    return { child, url, inspectorUrl, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Job events by id, with a wait for a condition on one job. */
class Jobs {
  readonly #latest = new Map<string, Job>();
  readonly #waiters = new Set<() => void>();

  seen(job: Job): void {
    this.#latest.set(job.id, job);
    for (const w of [...this.#waiters]) w();
  }

  async until(id: string, test: (j: Job) => boolean, what: string, timeoutMs = 120_000): Promise<Job> {
    const done = (): Job | undefined => {
      const j = this.#latest.get(id);
      return j && test(j) ? j : undefined;
    };
    const now = done();
    if (now) return this.#take(id, now);
    return new Promise<Job>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`job ${id}: not ${what} after ${timeoutMs / 1000} s (last phase ${this.#latest.get(id)?.phase ?? 'none'})`));
      }, timeoutMs);
      const check = (): void => {
        const j = done();
        if (!j) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(this.#take(id, j));
      };
      this.#waiters.add(check);
    });
  }

  /** An ended job is forgotten here, so the client's own memory does not grow with the run. */
  #take(id: string, j: Job): Job {
    if (j.endedAt !== null) this.#latest.delete(id);
    return j;
  }
}

interface Counts {
  calls: number;
  jobs: number;
  loops: number;
  errors: string[];
  started: number;
}

async function churn(client: WsClient, jobs: Jobs, domain: string, run: { until: number }, counts: Counts): Promise<void> {
  const ref = { hostId: HOST, domain, disk: 'vda' };
  const call = async <T,>(method: string, params: unknown): Promise<T> => {
    counts.calls += 1;
    return (await client.request(method, params)) as T;
  };
  while (Date.now() < run.until) {
    const roundStart = Date.now();
    try {
      // The new layer first, so every pull has the whole chain below it to copy and never ends
      // by itself before its abort, however many rounds ran before.
      const disk = await call<Disk>('disk.snapshot', ref);
      const under = disk.chain[1]?.index;
      if (under === undefined) throw new Error('the snapshot left no layer under the new one');
      const pull = await call<Job>('job.start', { ...ref, operation: { kind: 'pull' }, bandwidthBytesPerSec: MiB });
      counts.jobs += 1;
      await jobs.until(pull.id, (j) => j.phase === 'running' || j.endedAt !== null, 'running');
      await call('job.setSpeed', { ...ref, bandwidthBytesPerSec: 2 * MiB });
      await call('job.abort', ref);
      const aborted = await jobs.until(pull.id, (j) => j.endedAt !== null, 'ended');
      if (aborted.phase !== 'cancelled') throw new Error(`the aborted pull ended ${aborted.phase}: ${aborted.outcome ?? ''}`);
      const commit = await call<Job>('job.start', {
        ...ref,
        operation: { kind: 'commit', base: under, afterReady: 'pivot', deleteLayers: true },
        confirm: ['drop-layers', 'delete-files'],
      });
      counts.jobs += 1;
      const committed = await jobs.until(commit.id, (j) => j.endedAt !== null, 'ended');
      if (committed.phase !== 'completed') throw new Error(`the commit ended ${committed.phase}: ${committed.outcome ?? ''}`);
      await call('history.list', {});
      await sleep(roundStart + ROUND_MS - Date.now());
    } catch (err) {
      // One odd round (a shared machine, another client's libvirtd restart) is counted and the
      // loop goes on from whatever chain is left; many mean the soak itself is broken.
      counts.errors.push(`${domain}: ${err instanceof Error ? err.message : String(err)}`);
      console.error(`  ${domain}: ${counts.errors.at(-1) ?? ''}`);
      if (counts.errors.length > 20) throw new Error(`more than 20 failed rounds, the last: ${counts.errors.at(-1) ?? ''}`);
      await sleep(1000);
      const detail = await call<{ disks: Disk[] }>('domain.get', { hostId: HOST, domain }).catch(() => null);
      if (!detail) {
        // The domain is gone (on a shared host, another client's sweep can take it): the run
        // ends here and reports what it measured so far.
        counts.errors.push(`${domain} was gone after ${((Date.now() - counts.started) / 60_000).toFixed(1)} min: the run ended there`);
        run.until = Math.min(run.until, Date.now());
        return;
      }
      const disk = detail.disks[0];
      const base = disk?.chain[1]?.index;
      if (disk && disk.chain.length > 3 && base !== undefined) {
        await call('job.start', { ...ref, operation: { kind: 'commit', base, afterReady: 'pivot', deleteLayers: true }, confirm: ['drop-layers', 'delete-files'] }).catch(() => undefined);
      }
      continue;
    }
    counts.loops += 1;
  }
}

interface Sample {
  minute: number;
  /** VmRSS as the process has it, before the collection the heap figure needs. */
  rssMiB: number;
  rssAfterGcMiB: number;
  heapMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  calls: number;
  jobs: number;
  load1: number;
}

const toMiB = (b: number): number => b / MiB;

// Medians, not means: a sample can catch a large reply (the history) on its way out.
function thirds(samples: Sample[], key: 'rssMiB' | 'rssAfterGcMiB' | 'heapMiB'): { middle: number; last: number; change: number } {
  const n = samples.length;
  const middle = median(samples.slice(Math.floor(n / 3), Math.floor((2 * n) / 3)).map((s) => s[key]));
  const last = median(samples.slice(Math.floor((2 * n) / 3)).map((s) => s[key]));
  return { middle, last, change: (last - middle) / middle };
}

function diff(a: Map<string, { count: number; size: number }>, b: Map<string, { count: number; size: number }>): string[] {
  const rows = [...b].map(([k, v]) => ({ k, dCount: v.count - (a.get(k)?.count ?? 0), dSize: v.size - (a.get(k)?.size ?? 0) }));
  return rows
    .filter((r) => r.dSize > 0 || r.dCount > 0)
    .sort((x, y) => y.dSize - x.dSize)
    .slice(0, 25)
    .map((r) => `${r.k}: ${r.dCount >= 0 ? '+' : ''}${r.dCount} objects, ${r.dSize >= 0 ? '+' : ''}${(r.dSize / 1024).toFixed(1)} KiB`);
}

function trimRss(pid: number): number | null {
  try {
    execFileSync('gdb', ['-p', String(pid), '-batch', '-ex', 'call (int) malloc_trim(0)'], { stdio: 'ignore', timeout: 60_000 });
    return procRssMiB(pid);
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const loadBefore = load();
  console.log(`soak: ${DOMAINS} lab domains in churn for ${MINUTES} min, a sample every ${SAMPLE_MS / 1000} s; load ${loadBefore.join(' ')}`);
  if (!opts['no-build']) build();
  const server = await startServer(opts.uri ?? 'qemu:///system');
  const pid = server.child.pid ?? 0;
  const inspector = await Inspector.open(server.inspectorUrl);
  const client = await WsClient.open(server.url);
  const jobs = new Jobs();
  client.onEvent = (event, data) => {
    if (event === 'job') jobs.seen(data as Job);
  };
  const conn = await libvirt.open(opts.uri ?? 'qemu:///system');
  const labs: TestLab[] = [];
  const samples: Sample[] = [];
  const counts: Counts = { calls: 0, jobs: 0, loops: 0, errors: [], started: Date.now() };
  const notes: string[] = [];
  let snapshotDiff: string[] = [];
  try {
    const kept = ((await client.request('history.list', {})) as Job[]).length;
    if (!opts['empty-history'] && kept < 1000) throw new Error(`the server kept ${kept} of the 1,000 jobs of the history it was given: has the history's format changed?`);
    for (let i = 0; i < DOMAINS; i++) labs.push(await createTestLab(conn, { tag: `soak-${i}`, layers: 3 }));
    console.log(`  lab domains: ${labs.map((l) => l.name).join(', ')}`);
    const start = Date.now();
    counts.started = start;
    const run = { until: start + MINUTES * 60_000 };
    // Ctrl-C (or the suite passing on a signal) ends the rounds early; the labs are still removed.
    const stop = (): void => {
      run.until = Math.min(run.until, Date.now());
    };
    process.once('SIGINT', stop).once('SIGTERM', stop);
    const sample = async (): Promise<Sample> => {
      const rss = procRssMiB(pid);
      const m = await inspector.memoryAfterGc();
      const s: Sample = {
        minute: Number(((Date.now() - start) / 60_000).toFixed(2)),
        rssMiB: Number(rss.toFixed(1)),
        rssAfterGcMiB: Number(procRssMiB(pid).toFixed(1)),
        heapMiB: Number(toMiB(m.heapUsed).toFixed(2)),
        heapTotalMiB: Number(toMiB(m.heapTotal).toFixed(2)),
        externalMiB: Number(toMiB(m.external).toFixed(2)),
        calls: counts.calls,
        jobs: counts.jobs,
        load1: load()[0] ?? NaN,
      };
      samples.push(s);
      console.log(`  ${s.minute.toFixed(1)} min: RSS ${s.rssMiB} MiB (${s.rssAfterGcMiB} after GC), heap ${s.heapMiB} MiB (of ${s.heapTotalMiB}), external ${s.externalMiB} MiB; ${s.calls} calls, ${s.jobs} jobs; load ${s.load1}`);
      return s;
    };
    let firstSnapshot: Map<string, { count: number; size: number }> | null = null;
    const sampler = (async () => {
      await sample();
      for (let next = start + SAMPLE_MS; next <= run.until; next += SAMPLE_MS) {
        while (Date.now() < next && Date.now() < run.until) await sleep(Math.min(1000, next - Date.now()));
        if (Date.now() < next) break;
        await sample();
        if (opts.snapshots && !firstSnapshot && Date.now() - start >= (MINUTES * 60_000) / 3) firstSnapshot = await inspector.snapshot('warm');
      }
    })();
    await Promise.all([...labs.map((d) => churn(client, jobs, d.name, run, counts)), sampler]);
    if (firstSnapshot) snapshotDiff = diff(firstSnapshot, await inspector.snapshot('end'));
    if (opts.trim) {
      const before = procRssMiB(pid);
      const after = trimRss(pid);
      notes.push(after === null ? 'malloc_trim through gdb failed' : `malloc_trim(0) at the end: RSS ${before.toFixed(1)} → ${after.toFixed(1)} MiB`);
    }
  } finally {
    for (const lab of labs) await lab.dispose().catch((e: unknown) => console.error(`cleanup of ${lab.name}: ${String(e)}`));
    await conn.close();
    client.close();
    inspector.close();
    await server.stop();
  }

  const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
  const rss = thirds(samples, 'rssMiB');
  const rssAfterGc = thirds(samples, 'rssAfterGcMiB');
  const heap = thirds(samples, 'heapMiB');
  if (counts.errors.length > 0) notes.push(`${counts.errors.length} rounds failed and were skipped: ${counts.errors.slice(0, 5).join('; ')}`);
  if (samples.length < 6) notes.push(`only ${samples.length} samples: the thirds are thin`);
  if (opts['malloc-arena-max']) notes.push(`MALLOC_ARENA_MAX=${opts['malloc-arena-max']}`);
  if (snapshotDiff.length > 0) notes.push(`heap snapshot growth, end of warm-up → end: ${snapshotDiff.join('; ')}`);
  const loads = samples.map((s) => s.load1);
  const ranMinutes = samples.at(-1)?.minute ?? 0;
  if (ranMinutes < MINUTES - SAMPLE_MS / 60_000) notes.push(`stopped after ${ranMinutes} of ${MINUTES} minutes`);
  const span = `${ranMinutes.toFixed(0)} min, ${counts.calls} calls, ${counts.jobs} jobs; 1-min load ${Math.min(...loads)}–${Math.max(...loads)}`;
  await writeResult(opts.json, {
    name: 'soak',
    method:
      `${DOMAINS} lab domains through serve's WebSocket, each looping pull at 1 MiB/s, setSpeed, abort, snapshot, active commit with pivot, history.list; ` +
      `VmRSS and JS heap after GC (inspector) every ${SAMPLE_MS / 1000} s; last third against middle third`,
    loadBefore,
    loadAfter: load(),
    figures: [
      {
        what: `serve RSS under job churn, last third vs middle third (${span})`,
        value: rss.change * 100,
        unit: '%',
        spread:
          `${rss.middle.toFixed(1)} → ${rss.last.toFixed(1)} MiB (first ${samples[0]?.rssMiB ?? '?'}, last ${samples.at(-1)?.rssMiB ?? '?'}); ` +
          `after GC ${rssAfterGc.middle.toFixed(1)} → ${rssAfterGc.last.toFixed(1)} MiB (${pct(rssAfterGc.change)})`,
        target: 'within 5 %',
        met: Math.abs(rss.change) <= 0.05,
      },
      {
        what: 'serve JS heap after GC, last third vs middle third',
        value: heap.change * 100,
        unit: '%',
        spread: `${heap.middle.toFixed(2)} → ${heap.last.toFixed(2)} MiB (first ${samples[0]?.heapMiB ?? '?'}, last ${samples.at(-1)?.heapMiB ?? '?'})`,
        target: 'within 5 %',
        met: Math.abs(heap.change) <= 0.05,
      },
    ],
    notes,
    detail: { samples, counts, rss, rssAfterGc, heap, snapshotDiff, change: { rss: pct(rss.change), heap: pct(heap.change) } },
  });
}

await main();
