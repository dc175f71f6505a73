// Freshness and overhead while watching: 20 pulls throttled to 1 MiB/s, one on each of 20 lab
// domains (a lab domain has one disk), started through the headless server's WebSocket as the
// page starts them, with a WebSocket client subscribed to the events as the page is.
//   freshness (--seconds): every 100 ms, for each job, how old the progress the client holds is:
//     now − updatedAt (when the engine read it from libvirt). The engine sends a job only when it
//     changed, and QEMU moves a throttled job's counter in chunks, so an unchanged value is still
//     what libvirt says: the client then asks jobs.list (outside the overhead window) and, where
//     the engine's reading equals the one it holds, counts the age of that reading instead.
//   overhead (another --seconds, no jobs.list): CPU time of the serve process per wall second
//     from /proc/PID/stat, and its resident memory; against bench/poll_jobs.py, libvirt-python
//     polling the same jobs at the engine's interval (200 ms), over the same length of time.
//
//   node --import tsx bench/freshness.mts [--jobs 20] [--seconds 30] [--json FILE]
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import type { Job } from '../src/shared/model.ts';
import { MiB } from '../src/main/core/lab/images.ts';
import { createTestLab, libvirt, sweepStaleLabDomains, TEST_URI, type TestLab } from '../test/lab/harness.ts';
import { build, startServer } from './lib/browser.mts';
import { load, median, percentile, procCpuSeconds, procRssMiB, writeResult } from './lib/report.mts';
import { WsClient } from './lib/ws-client.mts';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '30' },
    python: { type: 'string', default: process.env['STRATA_BENCH_PYTHON'] || '/usr/bin/python3' },
    json: { type: 'string' },
  },
});
const JOBS = Number(opts.jobs);
const SECONDS = Number(opts.seconds);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const loadBefore = load();
  console.log(`freshness: ${JOBS} pulls at 1 MiB/s, ${SECONDS} s per phase; load ${loadBefore.join(' ')}`);
  build();
  await sweepStaleLabDomains(TEST_URI);
  const conn = await libvirt.open(TEST_URI);
  const labs: TestLab[] = [];
  const server = await startServer(TEST_URI);
  const pid = server.child.pid ?? 0;
  let client: WsClient | null = null;
  try {
    // The jobs must outlast set-up, both phases and Python's run at 1 MiB/s.
    const dataMiB = Math.ceil(3 * SECONDS + 2 * JOBS + 60);
    for (let i = 0; i < JOBS; i++) {
      labs.push(await createTestLab(conn, { tag: `fresh-${i}`, layers: 2, virtualSize: (dataMiB + 64) * MiB, baseDataBytes: dataMiB * MiB, overlayDataBytes: MiB }));
    }
    const names = new Set(labs.map((l) => l.name));
    client = await WsClient.open(server.url);
    const held = new Map<string, Job>();
    client.onEvent = (event, data) => {
      const job = data as Job;
      if (event === 'job' && names.has(job.domain)) held.set(job.domain, job);
    };
    for (const lab of labs) {
      await client.request('job.start', { hostId: 'default', domain: lab.name, disk: 'vda', operation: { kind: 'pull' }, bandwidthBytesPerSec: MiB });
    }
    await sleep(3000);

    const ages: number[] = [];
    const until = performance.now() + SECONDS * 1000;
    while (performance.now() < until) {
      const engine = new Map(((await client.request('jobs.list', { hostId: 'default' })) as Job[]).map((j) => [j.domain, j]));
      const now = Date.now();
      for (const [domain, shown] of held) {
        if (shown.endedAt !== null) continue;
        const known = engine.get(domain);
        const readAt = known && known.cur === shown.cur && known.end === shown.end ? known.updatedAt : shown.updatedAt;
        ages.push(now - readAt);
      }
      await sleep(100);
    }

    const cpu0 = procCpuSeconds(pid);
    const t0 = performance.now();
    await sleep(SECONDS * 1000);
    const cpuPerSecond = (procCpuSeconds(pid) - cpu0) / ((performance.now() - t0) / 1000);
    const rss = procRssMiB(pid);
    const running = [...held.values()].filter((j) => j.endedAt === null).length;

    const { stdout } = await promisify(execFile)(opts.python ?? '/usr/bin/python3', [
      join(here, 'poll_jobs.py'),
      '--uri',
      TEST_URI,
      '--domains',
      labs.map((l) => l.name).join(','),
      '--interval',
      '0.2',
      '--seconds',
      String(SECONDS),
    ]);
    const py = JSON.parse(stdout) as { cpuPerWallSecond: number; maxRssMiB: number; polls: number };

    const notes: string[] = [];
    if (running < JOBS) notes.push(`only ${running} of ${JOBS} jobs were still running at the end of the overhead window`);
    await writeResult(opts.json, {
      name: 'freshness',
      method:
        `${JOBS} pulls at 1 MiB/s started over the WebSocket of node out/main/serve.js; ages of the progress held by a subscribed client; ` +
        'CPU and RSS of the serve process from /proc; bench/poll_jobs.py polling the same jobs every 200 ms as the anchor',
      loadBefore,
      loadAfter: load(),
      figures: [
        {
          what: `age of the progress held by a client, ${JOBS} jobs`,
          value: percentile(ages, 99),
          unit: 'ms p99',
          spread: `p50 ${median(ages).toFixed(0)} ms, max ${Math.max(...ages).toFixed(0)} ms, ${ages.length} samples`,
          target: '< 250 ms',
          met: percentile(ages, 99) < 250,
        },
        {
          what: `serve process CPU while ${JOBS} jobs are watched`,
          value: cpuPerSecond * 100,
          unit: '% of a core',
          spread: `over ${SECONDS} s`,
          against: `libvirt-python polling them every 200 ms: ${(py.cpuPerWallSecond * 100).toFixed(2)} % (${py.polls} rounds)`,
          target: '< 3 %',
          met: cpuPerSecond < 0.03,
        },
        {
          what: 'serve process resident memory',
          value: rss,
          unit: 'MiB',
          against: `libvirt-python poller ${py.maxRssMiB.toFixed(0)} MiB`,
          target: '< 150 MiB',
          met: rss < 150,
        },
      ],
      notes,
      detail: { ages: ages.length, cpuPerSecond, rss, python: py },
    });
  } finally {
    client?.close();
    await server.stop();
    for (const lab of labs) await lab.dispose().catch((err: unknown) => console.error(`cleanup of ${lab.name}: ${String(err)}`));
    await conn.close();
  }
}

await main();
