// The renderer under load, in Chromium (playwright-core, Debian's /usr/bin/chromium):
//   jobs: 100 jobs updating twice a second, for --minutes (default 2; --minutes 10 for a longer
//     look at the heap). The events come from a fake server speaking the page's WebSocket
//     protocol (bench/lib/fake-server.mts): this measures the renderer's load, not libvirt's. All
//     100 arrive together every 500 ms, as the engine's poll sends them in one burst.
//   1,000 domains: node out/main/serve.js against a generated test:/// host (1,000 domains × 4
//     disks, chains 1–50 deep, bench/lib/test-host.mts), the page opened until the list shows
//     every domain, then one domain opened until its chains show.
// Measured: every task of the page's main thread from a Chromium trace (its RunTask events: the
// long-task API reports only tasks of 50 ms and more, so it cannot say how long the longest task
// below that was), kept beside the count the long-task API gives; the frames whose scripts ran
// over 50 ms in all ('long-animation-frame': the sum of its scripts' durations); and through the
// DevTools protocol the JS heap after a forced GC, every 15 s in the jobs run. Each job's rate
// chart keeps up to 360 samples and then thins them, so a page whose charts are still filling
// grows by design: the fake server first sends each job's first 3 minutes of samples at once
// (360 updates 0.5 s apart in the jobs' own time), so the charts are full before the heap is
// first read, and growth is judged over the whole run: the least-squares line through the samples
// (the thinning makes a sawtooth that first-to-last would mistake for growth or shrinkage).
//
//   node --import tsx bench/renderer.mts [--minutes 2] [--jobs 100] [--json FILE]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import type { Job } from '../src/shared/model.ts';
import { build, launchBrowser, startServer } from './lib/browser.mts';
import { FakeServer } from './lib/fake-server.mts';
import { load, percentile, writeResult, type Figure } from './lib/report.mts';
import { writeTestHost } from './lib/test-host.mts';

const { values: opts } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    jobs: { type: 'string', default: '100' },
    json: { type: 'string' },
  },
});
const MINUTES = Number(opts.minutes);
const JOBS = Number(opts.jobs);
const GiB = 2 ** 30;
const MiB = 2 ** 20;

// A string, not a function: tsx would wrap inner helpers in a `__name` call the page lacks.
// Entries are kept with their start time and counted by the window they began in: an observer
// delivers them a little later, and a long frame at the end of one phase would otherwise be
// counted in the next (it was: the list's 82 ms task showed up as a long frame of the next phase).
const probe = `
  window.__strataPerf = { tasks: [], frames: [] };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__strataPerf.tasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      window.__strataPerf.frames.push({ start: e.startTime, script: (e.scripts || []).reduce((s, x) => s + x.duration, 0) });
    }
  }).observe({ type: 'long-animation-frame', buffered: true });
  window.__strataMessages = 0;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => window.__strataMessages++);
    }
  };
`;

interface Perf {
  /** Tasks of 50 ms or more, the only ones the long-task API reports. */
  longTasks: number;
  longestLongTask: number;
  longFrames: number;
  longestFrameScript: number;
}

/** The page's clock, to mark where a phase begins and ends. */
const pageNow = (page: Page): Promise<number> => page.evaluate(() => performance.now());

/** Long tasks and frames that began in [from, to), once the observers have delivered them. */
async function perf(page: Page, from: number, to: number): Promise<Perf> {
  await page.evaluate(() => new Promise<void>((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(resolve, 250)))));
  return page.evaluate(
    ([from, to]) => {
      const recorded = (window as unknown as { __strataPerf: { tasks: { start: number; duration: number }[]; frames: { start: number; script: number }[] } }).__strataPerf;
      // Inline callbacks only: a named one would be wrapped in tsx's __name, which the page lacks.
      const tasks = recorded.tasks.filter((e) => e.start >= from! && e.start < to!);
      const frames = recorded.frames.filter((e) => e.start >= from! && e.start < to!);
      return {
        longTasks: tasks.length,
        longestLongTask: Math.max(0, ...tasks.map((t) => t.duration)),
        longFrames: frames.filter((f) => f.script > 50).length,
        longestFrameScript: Math.max(0, ...frames.map((f) => f.script)),
      };
    },
    [from, to],
  );
}

interface Tasks {
  count: number;
  longest: number;
  p99: number;
}

interface TraceEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  args?: { name?: string };
}

/**
 * Main-thread tasks in a trace: RunTask events of every renderer's main thread (CrRendererMain).
 * One page is open at a time, and a navigation may move it to another renderer process, so the
 * trace's other renderers (a spare one) are counted too: their few short tasks change nothing.
 * Left out: the tasks that ran the benchmark's own forced GC (the heap samples'
 * HeapProfiler.collectGarbage, a V8.GCLowMemoryNotification inside the task), not the page's work.
 */
function pageTasks(trace: { traceEvents: TraceEvent[] }): Tasks {
  const events = trace.traceEvents;
  const mains = new Set(events.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}/${e.tid}`));
  if (mains.size === 0) throw new Error('the trace has no renderer main thread');
  const onMain = (e: TraceEvent): boolean => e.ph === 'X' && mains.has(`${e.pid}/${e.tid}`);
  const forced = events.filter((e) => onMain(e) && e.name === 'V8.GCLowMemoryNotification');
  const ms = events
    .filter((e) => onMain(e) && e.name === 'RunTask')
    .filter((t) => !forced.some((g) => g.pid === t.pid && g.tid === t.tid && g.ts >= t.ts && g.ts <= t.ts + (t.dur ?? 0)))
    .map((e) => (e.dur ?? 0) / 1000);
  return { count: ms.length, longest: Math.max(0, ...ms), p99: percentile(ms, 99) };
}

/** Every task the page's main thread ran while `body` ran, from a Chromium trace. */
async function traceTasks<T>(browser: Browser, page: Page, body: () => Promise<T>): Promise<{ result: T; tasks: Tasks }> {
  await browser.startTracing(page, { categories: ['disabled-by-default-devtools.timeline', 'v8'] });
  let result: T;
  try {
    result = await body();
  } catch (err) {
    await browser.stopTracing();
    throw err;
  }
  return { result, tasks: pageTasks(JSON.parse((await browser.stopTracing()).toString()) as { traceEvents: TraceEvent[] }) };
}

async function heapMiB(page: Page): Promise<{ heap: number; nodes: number }> {
  const cdp = await page.context().newCDPSession(page);
  try {
    await cdp.send('HeapProfiler.collectGarbage');
    await cdp.send('Performance.enable');
    const { metrics } = await cdp.send('Performance.getMetrics');
    const metric = (name: string): number => metrics.find((m) => m.name === name)?.value ?? NaN;
    return { heap: metric('JSHeapUsedSize') / MiB, nodes: metric('Nodes') };
  } finally {
    await cdp.detach();
  }
}

function makeJob(i: number, now: number): Job {
  return {
    id: `bench-${i}`,
    hostId: 'default',
    domain: `bench-${String(i).padStart(3, '0')}`,
    disk: 'vda',
    type: 'pull',
    phase: 'running',
    cur: 0,
    end: 100 * GiB,
    progress: 0,
    bandwidthBytesPerSec: 50 * MiB,
    requestedBandwidthBytesPerSec: 50 * MiB,
    afterReady: null,
    rateBytesPerSec: null,
    etaSeconds: null,
    startedAt: now,
    updatedAt: now,
    endedAt: null,
    origin: 'strata',
    outcome: null,
    leftover: null,
  };
}

/** Growth over the run of the least-squares line through the samples. */
function fittedGrowth(points: readonly { t: number; heap: number }[]): number {
  const n = points.length;
  const mt = points.reduce((a, p) => a + p.t, 0) / n;
  const mh = points.reduce((a, p) => a + p.heap, 0) / n;
  const cov = points.reduce((a, p) => a + (p.t - mt) * (p.heap - mh), 0);
  const varT = points.reduce((a, p) => a + (p.t - mt) ** 2, 0);
  const slope = varT > 0 ? cov / varT : NaN;
  return slope * ((points.at(-1)?.t ?? 0) - (points[0]?.t ?? 0));
}

/** "none over 50 ms" or how many and the longest, as the long-task API saw them. */
function longTaskText(p: Perf): string {
  return p.longTasks === 0 ? 'long-task API: none of 50 ms or more' : `long-task API: ${p.longTasks} of 50 ms or more, longest ${p.longestLongTask.toFixed(0)} ms`;
}

async function jobsUnderLoad(browser: Browser): Promise<{ figures: Figure[]; heaps: { t: number; heap: number; nodes: number }[] }> {
  const fake = new FakeServer();
  // Each job's first 3 minutes of samples are sent at once below: the jobs began that long ago.
  const prefill = 360;
  const began = Date.now() - (prefill / 2) * 1000;
  fake.jobs = Array.from({ length: JOBS }, (_, i) => makeJob(i, began));
  const url = await fake.listen();
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const advance = (job: Job, at: number): void => {
    const rate = 50 * MiB * (0.9 + 0.2 * Math.random());
    job.cur = Math.min(job.end, job.cur + rate / 2);
    job.progress = job.cur / job.end;
    job.rateBytesPerSec = rate;
    job.etaSeconds = (job.end - job.cur) / rate;
    job.updatedAt = at;
    fake.emitJob(job);
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    await page.addInitScript({ content: probe });
    await page.goto(url);
    await page.getByRole('button', { name: /^Jobs/ }).click();
    await page.locator('section.job').nth(JOBS - 1).waitFor({ timeout: 30_000 });
    // 360 bursts 20 ms apart, each job's updatedAt 0.5 s after the last: the charts as 3 minutes
    // of updates leave them, thinned once.
    const before = await page.evaluate(() => (window as unknown as { __strataMessages: number }).__strataMessages);
    for (let k = 1; k <= prefill; k++) {
      for (const job of fake.jobs) advance(job, began + k * 500);
      await new Promise((r) => setTimeout(r, 20));
    }
    // On a busy machine the page takes longer than the sending: the heap is read only once it
    // has taken every one of those updates.
    await page.waitForFunction((n) => (window as unknown as { __strataMessages: number }).__strataMessages >= n, before + prefill * JOBS, {
      timeout: 300_000,
      polling: 500,
    });
    timer = setInterval(() => {
      const t = Date.now();
      for (const job of fake.jobs) advance(job, t);
    }, 500);
    const heaps: { t: number; heap: number; nodes: number }[] = [];
    await page.waitForTimeout(30_000);
    const from = await pageNow(page);
    const start = Date.now();
    const { tasks } = await traceTasks(browser, page, async () => {
      heaps.push({ t: 0, ...(await heapMiB(page)) });
      while (Date.now() - start < MINUTES * 60_000) {
        await page.waitForTimeout(Math.min(15_000, Math.max(0, MINUTES * 60_000 - (Date.now() - start))));
        heaps.push({ t: (Date.now() - start) / 1000, ...(await heapMiB(page)) });
      }
    });
    const p = await perf(page, from, await pageNow(page));
    const first = heaps[0];
    const last = heaps.at(-1);
    const growth = fittedGrowth(heaps);
    console.log(`jobs: heap ${heaps.map((h) => h.heap.toFixed(1)).join(' → ')} MiB; DOM nodes ${first?.nodes} → ${last?.nodes}`);
    return {
      heaps,
      figures: [
        {
          what: `${JOBS} jobs updating twice a second (fake server): longest task of the page's main thread`,
          value: tasks.longest,
          unit: 'ms',
          spread: `p99 ${tasks.p99.toFixed(1)} ms of ${tasks.count} tasks over ${MINUTES} min (Chromium trace); ${longTaskText(p)}`,
        },
        {
          what: `${JOBS} jobs: frames with over 50 ms of script`,
          value: p.longFrames,
          unit: 'frames',
          spread: `longest frame's script ${p.longestFrameScript.toFixed(0)} ms`,
          target: 'none',
          met: p.longFrames === 0,
        },
        {
          what: `${JOBS} jobs: JS heap growth over ${MINUTES} min (after GC, charts full from the start; fitted line)`,
          value: growth,
          unit: 'MiB',
          spread: `${heaps.length} samples, ${Math.min(...heaps.map((h) => h.heap)).toFixed(1)}–${Math.max(...heaps.map((h) => h.heap)).toFixed(1)} MiB; first ${first?.heap.toFixed(1)} → last ${last?.heap.toFixed(1)} MiB; DOM nodes ${first?.nodes} → ${last?.nodes}`,
          target: 'no growth (< 10 % of the first sample)',
          met: first !== undefined && heaps.length >= 5 ? growth < 0.1 * first.heap : null,
        },
      ],
    };
  } finally {
    clearInterval(timer);
    await page.close();
    await fake.close();
  }
}

async function thousandDomains(browser: Browser): Promise<Figure[]> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-bench-hosts-'));
  const uri = await writeTestHost(join(dir, 'big.xml'), { domains: 1000, disksPerDomain: 4, depth: (i, d) => 1 + ((i * 4 + d) % 50) });
  const server = await startServer(uri);
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  try {
    await page.addInitScript({ content: probe });
    const t0 = Date.now();
    const items = page.locator('ul[aria-label^="Domains on"] > li');
    const { tasks: listTasks } = await traceTasks(browser, page, async () => {
      await page.goto(server.url);
      await page.waitForFunction(() => document.querySelectorAll('ul[aria-label^="Domains on"] > li').length >= 1000, null, { timeout: 60_000 });
    });
    const listS = (Date.now() - t0) / 1000;
    const listEnd = await pageNow(page);
    const listPerf = await perf(page, 0, listEnd);
    const openFrom = await pageNow(page);
    const t1 = Date.now();
    const { tasks: openTasks } = await traceTasks(browser, page, async () => {
      await items.filter({ hasText: 'bench-0499' }).getByRole('button').click();
      await page.getByRole('list', { name: /^Backing chain of bench-0499\/vdd/ }).waitFor({ timeout: 30_000 });
    });
    const openS = (Date.now() - t1) / 1000;
    const openPerf = await perf(page, openFrom, await pageNow(page));
    const mem = await heapMiB(page);
    console.log(`1,000 domains: list in ${listS.toFixed(2)} s, a domain (4 chains up to 50 deep) opened in ${openS.toFixed(2)} s`);
    return [
      {
        what: "1,000-domain host (serve, test:///): page load to the full list, longest task of the page's main thread",
        value: listTasks.longest,
        unit: 'ms',
        spread: `list shown after ${listS.toFixed(2)} s; ${listTasks.count} tasks (Chromium trace); ${longTaskText(listPerf)}; longest frame's script ${listPerf.longestFrameScript.toFixed(0)} ms`,
      },
      {
        what: '1,000-domain host: frames with over 50 ms of script, loading the list',
        value: listPerf.longFrames,
        unit: 'frames',
        target: 'none',
        met: listPerf.longFrames === 0,
      },
      {
        what: "1,000-domain host: opening a domain with 4 chains (up to 50 deep), longest task of the page's main thread",
        value: openTasks.longest,
        unit: 'ms',
        spread: `shown after ${openS.toFixed(2)} s; ${openTasks.count} tasks (Chromium trace); ${longTaskText(openPerf)}; ${openPerf.longFrames} frames over 50 ms of script`,
        target: 'no frame over 50 ms of script',
        met: openPerf.longFrames === 0,
      },
      { what: '1,000-domain host: page JS heap (after GC)', value: mem.heap, unit: 'MiB', spread: `${mem.nodes} DOM nodes` },
    ];
  } finally {
    await page.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const loadBefore = load();
  console.log(`renderer: ${JOBS} jobs for ${MINUTES} min (fake server), then a 1,000-domain host (serve); load ${loadBefore.join(' ')}`);
  build();
  const browser = await launchBrowser();
  try {
    const jobs = await jobsUnderLoad(browser);
    const domains = await thousandDomains(browser);
    await writeResult(opts.json, {
      name: 'renderer',
      method:
        'Chromium: long tasks and long animation frames observed in the page, JS heap after GC through CDP; jobs from a fake WebSocket server (the renderer\'s load only), ' +
        'the 1,000 domains from serve on a test:/// host',
      loadBefore,
      loadAfter: load(),
      figures: [...jobs.figures, ...domains],
      notes: MINUTES < 10 ? [`jobs ran ${MINUTES} min (longer: node --import tsx bench/renderer.mts --minutes 10)`] : [],
      detail: { heaps: jobs.heaps },
    });
  } finally {
    await browser.close();
  }
}

await main();
