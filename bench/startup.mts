// Start-up: from spawning `node out/main/serve.js` (after the build `npm run serve` runs first,
// timed apart) to the first domain list painted in Chromium. The page records the time itself:
// a script added before any of the app's runs watches the DOM for the first entry of a host's
// domain list (or its "no domains" message) and takes the time in the callback of the
// requestAnimationFrame after it, then once more after a task, which runs once that frame is
// painted. Times are wall clock in both processes (performance.timeOrigin + now()), one machine.
//   cold: the first start after the build, in a new browser context (empty HTTP cache)
//   warm: --rounds more starts, each a new server process, the page reloaded in the same context
//
//   node --import tsx bench/startup.mts [--uri qemu:///system] [--rounds 3] [--json FILE]
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { build, launchBrowser, startServer } from './lib/browser.mts';
import { load, median, writeResult } from './lib/report.mts';

const { values: opts } = parseArgs({
  options: {
    uri: { type: 'string', default: process.env['STRATA_TEST_URI'] || 'qemu:///system' },
    rounds: { type: 'string', default: '3' },
    json: { type: 'string' },
  },
});
const ROUNDS = Math.max(1, Number(opts.rounds));

// A string, not a function: tsx would wrap a function's inner helpers in a `__name` call the page
// does not have.
const watchPaint = `
  const observer = new MutationObserver(() => {
    if (!document.querySelector('ul[aria-label^="Domains on"] li, li.host .empty')) return;
    observer.disconnect();
    requestAnimationFrame(() => setTimeout(() => (window.__strataPainted = performance.timeOrigin + performance.now())));
  });
  observer.observe(document, { childList: true, subtree: true });
`;

async function once(page: Page, uri: string): Promise<{ listeningS: number; paintedS: number }> {
  const server = await startServer(uri);
  try {
    await page.goto(server.url);
    await page.waitForFunction(() => (window as unknown as { __strataPainted?: number }).__strataPainted !== undefined, null, { timeout: 60_000 });
    const painted = await page.evaluate(() => (window as unknown as { __strataPainted: number }).__strataPainted);
    return { listeningS: (server.listeningAt - server.spawnedAt) / 1000, paintedS: (painted - server.spawnedAt) / 1000 };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const loadBefore = load();
  const uri = opts.uri ?? 'qemu:///system';
  console.log(`start-up: serve against ${uri}, 1 cold + ${ROUNDS} warm; load ${loadBefore.join(' ')}`);
  const buildS = build();
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    await context.addInitScript({ content: watchPaint });
    const page = await context.newPage();
    const cold = await once(page, uri);
    console.log(`cold: listening after ${cold.listeningS.toFixed(3)} s, list painted after ${cold.paintedS.toFixed(3)} s`);
    const warm: { listeningS: number; paintedS: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      warm.push(await once(page, uri));
      console.log(`warm ${r + 1}: listening after ${warm.at(-1)?.listeningS.toFixed(3)} s, list painted after ${warm.at(-1)?.paintedS.toFixed(3)} s`);
    }
    const w = warm.map((x) => x.paintedS);
    await writeResult(opts.json, {
      name: 'startup',
      method:
        'node out/main/serve.js spawned, page opened as soon as it listens; the page takes the time of the frame after the first domain list entry appears',
      loadBefore,
      loadAfter: load(),
      figures: [
        { what: `serve to first domain list painted, cold (${uri})`, value: cold.paintedS, unit: 's', spread: `listening after ${cold.listeningS.toFixed(3)} s; build before it ${buildS.toFixed(1)} s` },
        {
          what: `serve to first domain list painted, warm (${uri})`,
          value: median(w),
          unit: 's',
          spread: `${Math.min(...w).toFixed(3)}–${Math.max(...w).toFixed(3)} s over ${w.length}; listening after ${median(warm.map((x) => x.listeningS)).toFixed(3)} s`,
        },
      ],
      notes: [],
      detail: { buildS, cold, warm },
    });
  } finally {
    await browser.close();
  }
}

await main();
