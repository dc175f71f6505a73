// Throttle fidelity: pulls started through the core (job.start, as the UI does) at 5, 20 and
// 50 MiB/s on lab domains whose base holds enough data for the pull to run the whole window.
// During a window of --seconds (after 2 s to settle), `virsh blockjob --raw` is sampled every
// 500 ms by another process: its cur/time gives the rate QEMU delivers (compared with the limit),
// and the engine's own estimate (job.rateBytesPerSec in the job events the hub emits) is compared
// with that rate: its median over the same window.
//
//   node --import tsx bench/throttle.mts [--rates 5,20,50] [--seconds 12] [--json FILE]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCore, defaultHostId } from '../src/main/core/api/core.ts';
import type { Job } from '../src/shared/model.ts';
import { MiB } from '../src/main/core/lab/images.ts';
import { createTestLab, libvirt, sweepStaleLabDomains, virsh, TEST_URI, type TestLab } from '../test/lab/harness.ts';
import { load, median, writeResult, type Figure } from './lib/report.mts';

const { values: opts } = parseArgs({
  options: {
    rates: { type: 'string', default: '5,20,50' },
    seconds: { type: 'string', default: '12' },
    json: { type: 'string' },
  },
});
const RATES = (opts.rates ?? '').split(',').map(Number);
const SECONDS = Number(opts.seconds);
const SETTLE_S = 2;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function virshCur(name: string): Promise<number> {
  const out = await virsh(['blockjob', name, 'vda', '--raw']);
  const m = /cur=(\d+)/.exec(out);
  if (!m?.[1]) throw new Error(`no job on ${name}: ${out.trim()}`);
  return Number(m[1]);
}

async function main(): Promise<void> {
  const loadBefore = load();
  console.log(`throttle: pulls at ${RATES.join(', ')} MiB/s, ${SECONDS} s windows; load ${loadBefore.join(' ')}`);
  await sweepStaleLabDomains(TEST_URI);
  const conn = await libvirt.open(TEST_URI);
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-throttle-'));
  const core = await createCore({ uri: TEST_URI, dataDir, labRoot: null });
  const labs: TestLab[] = [];
  const figures: Figure[] = [];
  const detail: unknown[] = [];
  try {
    for (const mibs of RATES) {
      // Twice the window's worth: QEMU copies the first chunks at once, and start-up takes time.
      const dataMiB = Math.ceil(mibs * (SECONDS + SETTLE_S) * 2);
      const lab = await createTestLab(conn, { tag: `throttle-${mibs}`, layers: 2, virtualSize: (dataMiB + 64) * MiB, baseDataBytes: dataMiB * MiB, overlayDataBytes: MiB });
      labs.push(lab);
      const limit = mibs * MiB;
      const rates: { t: number; rate: number | null }[] = [];
      const off = core.hub.on((event, data) => {
        const job = data as Job;
        if (event === 'job' && job.domain === lab.name) rates.push({ t: performance.now(), rate: job.rateBytesPerSec });
      });
      const reply = await core.dispatcher.handle('job.start', {
        hostId: defaultHostId,
        domain: lab.name,
        disk: 'vda',
        operation: { kind: 'pull' },
        bandwidthBytesPerSec: limit,
      });
      if (!reply.ok) throw new Error(`job.start: ${reply.error.message}`);
      await sleep(SETTLE_S * 1000);
      const samples: { t: number; cur: number }[] = [];
      const end = performance.now() + SECONDS * 1000;
      while (performance.now() < end) {
        const t0 = performance.now();
        const cur = await virshCur(lab.name);
        samples.push({ t: (t0 + performance.now()) / 2, cur });
        await sleep(Math.max(0, 500 - (performance.now() - t0)));
      }
      off();
      await core.dispatcher.handle('job.abort', { hostId: defaultHostId, domain: lab.name, disk: 'vda' });
      const first = samples[0];
      const last = samples.at(-1);
      if (!first || !last || last.t <= first.t) throw new Error('too few virsh samples');
      const delivered = ((last.cur - first.cur) / (last.t - first.t)) * 1000;
      const estimates = rates.filter((r) => r.t >= first.t && r.t <= last.t && r.rate !== null).map((r) => r.rate ?? NaN);
      const estimate = median(estimates);
      const error = estimate / delivered - 1;
      figures.push({
        what: `pull limited to ${mibs} MiB/s: QEMU's rate / the limit`,
        value: delivered / limit,
        unit: '×',
        spread: `${(delivered / MiB).toFixed(2)} MiB/s from ${samples.length} virsh samples over ${((last.t - first.t) / 1000).toFixed(1)} s`,
      });
      figures.push({
        what: `pull limited to ${mibs} MiB/s: Strata's rate estimate / virsh's`,
        value: estimate / delivered,
        unit: '×',
        spread: `median of ${estimates.length} job events, ${(Math.min(...estimates) / MiB).toFixed(2)}–${(Math.max(...estimates) / MiB).toFixed(2)} MiB/s`,
        target: 'within 5 %',
        met: Math.abs(error) <= 0.05,
      });
      detail.push({ mibs, samples, rates });
      console.log(`${mibs} MiB/s: QEMU ${(delivered / MiB).toFixed(2)} MiB/s, Strata's estimate ${(estimate / MiB).toFixed(2)} MiB/s (${(error * 100).toFixed(1)} %)`);
      await lab.dispose();
    }
    await writeResult(opts.json, {
      name: 'throttle',
      method: "job.start pulls through the core at each limit; virsh blockjob --raw sampled every 500 ms against job.rateBytesPerSec from the engine's events",
      loadBefore,
      loadAfter: load(),
      figures,
      notes: [],
      detail,
    });
  } finally {
    await core.close();
    for (const lab of labs) await lab.dispose().catch((err: unknown) => console.error(`cleanup of ${lab.name}: ${String(err)}`));
    await conn.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
