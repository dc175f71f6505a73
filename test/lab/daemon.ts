// Restarting the machine's libvirtd for tests that prove Strata survives it. Only restart tests
// use this, and only briefly: other test files may be talking to the same daemon.
//
// libvirtd is stopped with SIGTERM (its orderly shutdown: QEMU and its block jobs keep running)
// and started again with .ci/start-daemons, which starts it with the same configuration (the
// loopback TCP listener included) and returns once `virsh version` answers.
import { fileURLToPath } from 'node:url';
import { runTool } from '../../src/main/core/lab/images.ts';
import { waitFor } from './harness.ts';

const startDaemons = fileURLToPath(new URL('../../.ci/start-daemons', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pids of the running libvirtd processes (normally one). */
export async function libvirtdPids(): Promise<number[]> {
  const out = await runTool('pgrep', ['-x', 'libvirtd']).catch(() => '');
  return out
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

export interface RestartTimes {
  /** Epoch ms when SIGTERM was sent. */
  stoppingAt: number;
  /** Epoch ms when the old daemon had exited. */
  stoppedAt: number;
  /** Epoch ms when the new daemon answered. */
  upAt: number;
}

/** Starts libvirtd (and virtlogd) when they are not running; resolves once libvirtd answers. */
export async function startLibvirtd(): Promise<void> {
  await runTool('bash', [startDaemons], 60_000);
}

export interface RestartOptions {
  /** How long to stay down once the old daemon has exited. */
  downMs?: number;
  /** Runs once the old daemon has exited, before `downMs` and the start: the daemon is down meanwhile. */
  whileDown?: () => Promise<void>;
  exitTimeoutMs?: number;
}

/**
 * Stops libvirtd (SIGTERM, waits for it to exit), runs `whileDown`, stays down `downMs` more,
 * then starts it again and resolves when it answers. Whatever fails, the daemon is started again.
 */
export async function restartLibvirtd(options: RestartOptions = {}): Promise<RestartTimes> {
  const pids = await libvirtdPids();
  if (pids.length === 0) throw new Error('no libvirtd is running: nothing to restart');
  const stoppingAt = Date.now();
  try {
    for (const pid of pids) process.kill(pid, 'SIGTERM');
    await waitFor(() => pids.every((p) => !alive(p)), {
      timeoutMs: options.exitTimeoutMs ?? 30_000,
      intervalMs: 50,
      what: `libvirtd (pid ${pids.join(', ')}) to exit after SIGTERM`,
    });
  } catch (err) {
    await startLibvirtd();
    throw err;
  }
  const stoppedAt = Date.now();
  try {
    await options.whileDown?.();
    if (options.downMs) await sleep(options.downMs);
  } finally {
    await startLibvirtd();
  }
  return { stoppingAt, stoppedAt, upAt: Date.now() };
}
