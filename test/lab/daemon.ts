// Restarting the machine's libvirtd for tests that prove Strata survives it. Only restart tests
// use this, and only briefly: other test files may be talking to the same daemon.
//
// A restart drops every client of the daemon on this machine, so it happens only where that is
// expected: in CI (CI=true) or when asked for with STRATA_TEST_RESTART_LIBVIRTD=1.
//
// libvirtd is stopped with SIGTERM (its orderly shutdown: QEMU and its block jobs keep running)
// and started again exactly as it was running before: through its systemd unit when it has one,
// otherwise with the command line, environment and working directory the old process had. A
// test never leaves behind a daemon configured differently from the one it found.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import { runTool } from '../../src/main/core/lab/images.ts';
import { TEST_URI, waitFor } from './harness.ts';

const RESTART_OPT_IN = 'STRATA_TEST_RESTART_LIBVIRTD';

/** Why this machine's libvirtd may not be restarted here, or null when it may. */
export function restartRefusal(): string | null {
  if (process.env['CI'] === 'true' || process.env[RESTART_OPT_IN] === '1') return null;
  return (
    "these tests stop and restart this machine's libvirtd, which drops every connection to it; " +
    `they run in CI (CI=true) or when you opt in with ${RESTART_OPT_IN}=1`
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pids of the system instance's libvirtd (normally one). Users' own session daemons
 * (`libvirtd --session`, started by libvirt's client for a user, root included) are not it: a
 * restart must never stop them, and a soak of the session instance lost its daemon that way.
 */
export async function libvirtdPids(): Promise<number[]> {
  const out = await runTool('pgrep', ['-x', 'libvirtd']).catch(() => '');
  const pids = out
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
  const system: number[] = [];
  for (const pid of pids) {
    // A process that ended between the listing and the read is not running any more.
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    if (argv[0] && !argv.includes('--session') && /^Uid:\s+0\s/m.test(status)) system.push(pid);
  }
  return system;
}

/** How the running libvirtd was started, enough to start it again the same way. */
export type LibvirtdLaunch =
  | { kind: 'systemd'; unit: string; sockets: string[] }
  | { kind: 'command'; argv: string[]; env: NodeJS.ProcessEnv; cwd: string };

const nulSeparated = (text: string): string[] => text.split('\0').filter((s) => s !== '');

/** Reads how process `pid` (a libvirtd) was started, from /proc. */
export async function libvirtdLaunch(pid: number): Promise<LibvirtdLaunch> {
  const cgroup = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  const unit = /\/([^/\s]+\.service)$/m.exec(cgroup)?.[1];
  if (unit && existsSync('/run/systemd/system')) {
    // Its socket units would start it again at the first client while it is meant to be down.
    const sockets = (await runTool('systemctl', ['show', '--property=TriggeredBy', '--value', unit])).split(/\s+/).filter(Boolean);
    const active = [];
    for (const s of sockets) if ((await runTool('systemctl', ['is-active', s]).catch(() => '')).trim() === 'active') active.push(s);
    return { kind: 'systemd', unit, sockets: active };
  }
  const argv = nulSeparated(await readFile(`/proc/${pid}/cmdline`, 'utf8'));
  const env = Object.fromEntries(
    nulSeparated(await readFile(`/proc/${pid}/environ`, 'utf8')).map((kv) => {
      const at = kv.indexOf('=');
      return [kv.slice(0, at), kv.slice(at + 1)];
    }),
  );
  return { kind: 'command', argv, env, cwd: await readlink(`/proc/${pid}/cwd`) };
}

/** Starts libvirtd as `launch` says and resolves once it answers on TEST_URI. */
async function startLibvirtd(launch: LibvirtdLaunch): Promise<void> {
  if (launch.kind === 'systemd') {
    await runTool('systemctl', ['start', ...launch.sockets, launch.unit], 60_000);
  } else if ((await libvirtdPids()).length === 0) {
    // Otherwise a supervisor has started it again already, and a second one would only fail.
    const [command, ...args] = launch.argv;
    if (!command) throw new Error('libvirtd had an empty command line');
    const daemonizes = args.includes('-d') || args.includes('--daemon');
    const child = spawn(command, args, { env: launch.env, cwd: launch.cwd, detached: true, stdio: ['ignore', 'ignore', daemonizes ? 'pipe' : 'ignore'] });
    if (daemonizes) {
      // With -d the first process exits once the daemon is set up (or has failed to be).
      let stderr = '';
      child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', resolve);
      });
      if (code !== 0) throw new Error(`${launch.argv.join(' ')} exited with ${code}: ${stderr.trim()}`);
    } else {
      child.unref();
    }
  }
  await waitFor(() => runTool('virsh', ['-c', TEST_URI, 'version'], 10_000).then(() => true, () => false), {
    timeoutMs: 60_000,
    intervalMs: 200,
    what: `libvirtd to answer on ${TEST_URI} again`,
  });
}

export interface RestartTimes {
  /** Epoch ms when SIGTERM was sent. */
  stoppingAt: number;
  /** Epoch ms when the old daemon had exited. */
  stoppedAt: number;
  /** Epoch ms when the new daemon answered. */
  upAt: number;
}

export interface RestartOptions {
  /** How long to stay down once the old daemon has exited. */
  downMs?: number;
  /** Runs once the old daemon has exited, before `downMs` and the start: the daemon is down meanwhile. */
  whileDown?: () => Promise<void>;
  exitTimeoutMs?: number;
  /**
   * SIGKILL stands for a daemon that crashes: no orderly shutdown, and its status files, pid file
   * and sockets left behind for the next start to cope with. Default SIGTERM.
   */
  signal?: 'SIGTERM' | 'SIGKILL';
}

/**
 * Stops libvirtd (SIGTERM, or `signal`; waits for it to exit), runs `whileDown`, stays down
 * `downMs` more, then starts it again as it was started before and resolves when it answers.
 * Whatever fails, the daemon is started again.
 */
export async function restartLibvirtd(options: RestartOptions = {}): Promise<RestartTimes> {
  const refusal = restartRefusal();
  if (refusal) throw new Error(refusal);
  const pids = await libvirtdPids();
  const [first] = pids;
  if (first === undefined) throw new Error('no libvirtd is running: nothing to restart');
  const launch = await libvirtdLaunch(first);
  const signal = options.signal ?? 'SIGTERM';
  const stoppingAt = Date.now();
  try {
    if (launch.kind === 'systemd' && signal === 'SIGTERM') await runTool('systemctl', ['stop', ...launch.sockets, launch.unit], 60_000);
    else if (launch.kind === 'systemd') await runTool('systemctl', ['kill', `--signal=${signal}`, launch.unit], 60_000);
    else for (const pid of pids) process.kill(pid, signal);
    await waitFor(() => pids.every((p) => !alive(p)), {
      timeoutMs: options.exitTimeoutMs ?? 30_000,
      intervalMs: 50,
      what: `libvirtd (pid ${pids.join(', ')}) to exit after ${signal}`,
    });
  } catch (err) {
    await startLibvirtd(launch);
    throw err;
  }
  const stoppedAt = Date.now();
  try {
    await options.whileDown?.();
    if (options.downMs) await sleep(options.downMs);
  } finally {
    await startLibvirtd(launch);
  }
  return { stoppingAt, stoppedAt, upAt: Date.now() };
}
