// `node out/main/serve.js` on a data folder of its own and Debian's Chromium through
// playwright-core, as test/e2e/fixture.ts starts them, for the benchmarks that measure the page.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

export const repo = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

/** What `npm run serve` does before it starts: the build of main, preload and renderer. */
export function build(): number {
  const start = performance.now();
  execFileSync('npx', ['electron-vite', 'build', '-c', 'electron.config.ts', '--logLevel', 'warn'], { cwd: repo, stdio: 'inherit' });
  return (performance.now() - start) / 1000;
}

export interface Server {
  url: string;
  child: ChildProcess;
  /** performance.timeOrigin + performance.now() when the process was spawned. */
  spawnedAt: number;
  listeningAt: number;
  stop(): Promise<void>;
}

export async function startServer(uri: string): Promise<Server> {
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-data-'));
  const spawnedAt = performance.timeOrigin + performance.now();
  const child = spawn('node', [join(repo, 'out/main/serve.js'), '--uri', uri, '--port', '0'], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STRATA_DATA_DIR: dataDir },
  });
  let output = '';
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref())]);
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve printed no Listening line in 60 s:\n${output}`)), 60_000);
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const m = /^Listening: (http:\/\/\S+)$/m.exec(output);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`serve exited with ${code}:\n${output}`));
      });
    });
    return { url, child, spawnedAt, listeningAt: performance.timeOrigin + performance.now(), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env['STRATA_CHROMIUM'] ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
