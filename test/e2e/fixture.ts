// What the browser tests share: `npm run serve` on a data folder of its own (so history and saved
// hosts start empty and nothing of the user's is touched), Debian's Chromium driven by Playwright,
// small lab domains on real qcow2 chains, and the checks made afterwards with virsh and qemu-img.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { repoRoot } from '../../scripts/electron-binary.mjs';
import { runTool } from '../../src/main/core/lab/images.ts';
import { createTestLab, diskChain, libvirt, TEST_URI, virsh, type Connection, type TestLab, type TestLabOptions } from '../lab/harness.ts';

export const MiB = 1024 * 1024;
const chromiumPath = process.env['STRATA_CHROMIUM'] ?? '/usr/bin/chromium';

/** Small chains: every job ends in a second or two unless held back by a limit. */
export const smallChain: TestLabOptions = { virtualSize: 64 * MiB, baseDataBytes: 8 * MiB, overlayDataBytes: 2 * MiB };

export interface Served {
  url: string;
  child: ChildProcess;
  dataDir: string;
  /** The newest of what the server printed (its log), for a failed test to show. */
  output(): string;
}

/** How much of a server's output is kept: enough for the last minutes of its log. */
const keptOutputChars = 256 * 1024;

/**
 * Starts the headless server on a fresh data folder; resolves with the URL of its `Listening:`
 * line. Through `npm run serve`, which builds `out/` first, unless the test runner has built it
 * already for the whole run (STRATA_TEST_BUILT=1): a build per file would cost seconds each and,
 * with two lanes, write `out/` while a server of the other lane loads it.
 */
export async function serve(uri: string = TEST_URI): Promise<Served> {
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-e2e-data-'));
  const args = ['--uri', uri, '--port', '0'];
  const [command, commandArgs] =
    process.env['STRATA_TEST_BUILT'] === '1' ? [process.execPath, ['out/main/serve.js', ...args]] : ['npm', ['run', 'serve', '--', ...args]];
  const child = spawn(command, commandArgs, {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STRATA_DATA_DIR: dataDir },
  });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output += chunk.toString();
    if (output.length > 2 * keptOutputChars) output = output.slice(-keptOutputChars);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server printed no Listening line in 120 s:\n${output}`)), 120_000);
    child.stdout?.on('data', () => {
      const m = /^Listening: (http:\/\/\S+)$/m.exec(output);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code}:\n${output}`));
    });
  });
  return { url, child, dataDir, output: () => output.slice(-keptOutputChars) };
}

/** Stops the server and waits for it to exit, so it no longer writes in its data folder when that goes. */
export async function stopServing(served: Served | undefined): Promise<void> {
  if (!served) return;
  const child = served.child;
  if (child.pid && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      // Under npm the server is a child of npm's: signal the whole process group.
      process.kill(-child.pid, 'SIGTERM');
      await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref())]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  await rm(served.dataDir, { recursive: true, force: true });
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** One browser, one server, one libvirt connection for a test file; labs made per test. */
export class E2E {
  conn!: Connection;
  served!: Served;
  browser!: Browser;
  page!: Page;
  readonly pageErrors: string[] = [];
  /** The requests the page sent on its WebSocket, by method, in order. */
  readonly sent: string[] = [];
  readonly #labs: TestLab[] = [];

  /**
   * Made inside a suite: a test of it that fails prints the end of the server's log file (its
   * info lines: jobs started, aborted, ended) and anything else the server printed (a crash's
   * stack), which the test's own error cannot show.
   */
  constructor() {
    afterEach(async (t) => {
      // `passed` is there since Node 20.12, though Node 20's type declarations do not name it yet.
      if (!('diagnostic' in t) || (t as { passed?: boolean }).passed !== false || !this.served) return;
      const file = await readFile(join(this.served.dataDir, 'logs', 'strata.log'), 'utf8').catch(() => '');
      const other = this.served.output().split('\n').filter((l) => l.trim() !== '' && !l.startsWith('time='));
      const lines = [...file.trimEnd().split('\n').slice(-200), ...other.slice(-50)];
      t.diagnostic(`the server's log as "${t.name}" failed (its last lines, then what else it printed):`);
      for (const line of lines) t.diagnostic(line);
    });
  }

  async start(): Promise<void> {
    this.conn = await libvirt.open(TEST_URI);
    this.served = await serve();
    this.browser = await launchBrowser();
    this.page = await this.browser.newPage({ viewport: { width: 1280, height: 860 } });
    this.page.on('pageerror', (e) => this.pageErrors.push(String(e)));
    this.page.on('websocket', (ws) =>
      ws.on('framesent', ({ payload }) => {
        const method = (JSON.parse(String(payload)) as { method?: unknown }).method;
        if (typeof method === 'string') this.sent.push(method);
      }),
    );
    await this.page.goto(this.served.url);
  }

  async stop(): Promise<void> {
    await this.browser?.close();
    await stopServing(this.served);
    // At once: each destroy waits for QEMU's end to be reaped, which takes a second or two here.
    await Promise.all(this.#labs.splice(0).map((lab) => lab.dispose()));
    await this.conn?.close();
  }

  async lab(tag: string, options: TestLabOptions = {}): Promise<TestLab> {
    const lab = await createTestLab(this.conn, { tag, ...smallChain, ...options });
    this.#labs.push(lab);
    return lab;
  }

  /** Selects a domain in the sidebar (refreshing the list first) and waits for its chain. */
  async open(lab: TestLab, disk = 'vda'): Promise<void> {
    const page = this.page;
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    await page.getByRole('list', { name: /^Domains on / }).getByRole('button', { name: new RegExp(lab.name) }).click();
    await this.chain(lab, disk).waitFor();
  }

  chain(lab: TestLab, disk = 'vda') {
    return this.page.getByRole('list', { name: `Backing chain of ${lab.name}/${disk}`, exact: true });
  }

  /** Waits until the page shows `count` layers in the disk's chain. */
  async waitForLayers(lab: TestLab, count: number, timeoutMs = 60_000): Promise<void> {
    const items = this.chain(lab).getByRole('listitem');
    const deadline = Date.now() + timeoutMs;
    while ((await items.count()) !== count) {
      if (Date.now() > deadline) throw new Error(`the chain of ${lab.name} never showed ${count} layers (shows ${await items.count()})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  dialog() {
    return this.page.getByRole('dialog');
  }

  /**
   * Saves a screenshot to test-results/screenshots, or to $STRATA_SCREENSHOT_DIR: the README's
   * pictures are refreshed on purpose (STRATA_SCREENSHOT_DIR=docs/screenshots), never by every
   * test run on a developer's tree.
   */
  async screenshot(name: string): Promise<void> {
    const dir = resolve(repoRoot, process.env['STRATA_SCREENSHOT_DIR'] ?? 'test-results/screenshots');
    await this.page.screenshot({ path: join(dir, `${name}.png`) });
  }
}

/** The disk's image files in libvirt's live XML, active layer first. */
export async function liveChain(domain: string, disk = 'vda'): Promise<string[]> {
  return diskChain(await virsh(['dumpxml', domain]), disk);
}

/** The chain as qemu-img reads it from the files themselves (-U: the domain holds the lock). */
export async function imageChain(path: string): Promise<string[]> {
  const info = JSON.parse(await runTool('qemu-img', ['info', '--backing-chain', '-U', '--output=json', path])) as { filename: string }[];
  return info.map((i) => i.filename);
}
