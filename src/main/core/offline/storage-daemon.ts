// qemu-storage-daemon: QEMU's block layer without a guest, one process per offline job, driven
// over QMP on a UNIX socket in a private runtime folder. The daemon is started detached, so a
// Strata that crashes leaves it running for the next start to find and follow (see intents.ts);
// every path through `stop()` ends with the process gone (`quit`, then SIGKILL after a timeout).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageLayer } from './image-tool.ts';
import { QmpClient, type QmpObject } from './qmp.ts';

export const STORAGE_DAEMON = process.env['STRATA_QEMU_STORAGE_DAEMON'] || '/usr/bin/qemu-storage-daemon';

/** Node names of chain layer i (0 = active layer): its protocol node and its format node. */
export function fileNode(i: number): string {
  return `strata-file${i}`;
}
export function layerNode(i: number): string {
  return `strata-layer${i}`;
}

/**
 * `--blockdev` options for a chain (active layer first), with each layer's format and backing
 * link explicit, as the image headers record them, so QEMU never probes a format. Layers not in
 * `writable` are opened read-only: they take only a shared lock, so a base that another domain
 * uses can stay under it.
 */
export function chainBlockdevs(chain: readonly ImageLayer[], writable: ReadonlySet<number>): QmpObject[] {
  const out: QmpObject[] = [];
  for (let i = chain.length - 1; i >= 0; i--) {
    const layer = chain[i]!;
    const readOnly = !writable.has(i);
    out.push({ driver: 'file', 'node-name': fileNode(i), filename: layer.path, 'read-only': readOnly });
    const format: QmpObject = { driver: layer.format, 'node-name': layerNode(i), file: fileNode(i), 'read-only': readOnly };
    if (layer.format !== 'raw') format['backing'] = i + 1 < chain.length ? layerNode(i + 1) : null;
    out.push(format);
  }
  return out;
}

export class StorageDaemonError extends Error {
  override name = 'StorageDaemonError';
  constructor(
    message: string,
    /** The start was given up because its signal was aborted, not because the daemon failed. */
    readonly cancelled = false,
  ) {
    super(message);
  }
}

// A zombie counts as gone: a daemon whose Strata died is reparented, and in a container the new
// parent may never reap it.
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** True when `pid` is a qemu-storage-daemon serving `socket` (not a reused pid). */
export async function isOurDaemon(pid: number, socket: string): Promise<boolean> {
  if (!isAlive(pid)) return false;
  try {
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return args.some((a) => a.includes('qemu-storage-daemon')) && args.some((a) => a.includes(`path=${socket.replaceAll(',', ',,')},`));
  } catch {
    return false;
  }
}

/** ' (state D, in wchan X)' of a process, from /proc; '' when it cannot be read. */
function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    const wchan = readFileSync(`/proc/${pid}/wchan`, 'utf8').trim();
    return ` (state ${state}${wchan && wchan !== '0' ? `, in ${wchan}` : ''})`;
  } catch {
    // Gone meanwhile, or /proc not readable: the message goes without it.
    return '';
  }
}

async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs: number, signal?: Promise<unknown>): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let stop = false;
  void signal?.then(() => (stop = true));
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    if (await predicate()) return true;
    if (stop || Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, delay));
  }
}

export interface StartOptions {
  nodes: QmpObject[];
  /** A private folder for the socket and the daemon's log; made (0700) when not given. */
  runtimeDir?: string;
  startTimeoutMs?: number;
  /** Aborted: the start ends at once (the daemon killed) with a StorageDaemonError whose `cancelled` is true. */
  signal?: AbortSignal;
}

export class StorageDaemon {
  #stopping: Promise<void> | null = null;

  private constructor(
    readonly pid: number,
    readonly socket: string,
    readonly runtimeDir: string,
    readonly qmp: QmpClient,
  ) {}

  /** The daemon's stderr and stdout, for an error message when it dies. */
  get logPath(): string {
    return join(this.runtimeDir, 'daemon.log');
  }

  static async start(options: StartOptions): Promise<StorageDaemon> {
    const runtimeDir = options.runtimeDir ?? (await mkdtemp(join(tmpdir(), 'strata-offline-')));
    const socket = join(runtimeDir, 'qmp.sock');
    const logPath = join(runtimeDir, 'daemon.log');
    const logFile = await open(logPath, 'a', 0o600);
    const args = [
      ...options.nodes.flatMap((n) => ['--blockdev', JSON.stringify(n)]),
      '--chardev',
      `socket,id=strata-qmp,path=${socket.replaceAll(',', ',,')},server=on,wait=off`,
      '--monitor',
      'chardev=strata-qmp',
    ];
    const child = spawn(STORAGE_DAEMON, args, { detached: true, stdio: ['ignore', logFile.fd, logFile.fd] });
    // Listened to before any await: a daemon refused at once (a lock, a missing file) exits
    // within milliseconds, and an exit nobody listened to would leave the wait below blind.
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(null));
    });
    child.unref();
    await logFile.close();
    const pid = child.pid;
    const timeoutMs = options.startTimeoutMs ?? 15_000;
    const why = async (what: string): Promise<StorageDaemonError> => {
      const log = (await readFile(logPath, 'utf8').catch(() => '')).trim();
      return new StorageDaemonError(`qemu-storage-daemon ${what}${log ? `: ${log}` : ''}`);
    };
    if (pid === undefined) throw await why(`could not be started (${STORAGE_DAEMON})`);
    let qmp: QmpClient | null = null;
    let ended = false;
    void exited.then(() => (ended = true));
    const cancelled = new Promise<void>((resolve) => {
      if (options.signal?.aborted) resolve();
      options.signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    const deadline = Date.now() + timeoutMs;
    const connected = await waitUntil(
      async () => {
        if (ended || !isAlive(pid)) return true;
        try {
          // What is left of the wait: a daemon that accepts but never greets would otherwise
          // hold each attempt for the whole timeout, and the start for twice that. A cancel does
          // not wait for an attempt under way: the kill below closes its socket.
          qmp = await Promise.race([QmpClient.connect(socket, Math.max(50, deadline - Date.now())), cancelled.then(() => null)]);
          return qmp !== null;
        } catch {
          return false;
        }
      },
      timeoutMs,
      Promise.race([exited, cancelled]),
    );
    const gaveUp = options.signal?.aborted === true;
    if (!qmp || !connected || gaveUp) {
      const exitedByItself = ended || !isAlive(pid);
      // Where a daemon that never answered was stuck, read before it is killed: the one clue left.
      const stuck = exitedByItself || gaveUp ? '' : processState(pid);
      (qmp as QmpClient | null)?.close();
      if (!exitedByItself) process.kill(pid, 'SIGKILL');
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exited, new Promise<null>((r) => (timer = setTimeout(() => r(null), 2000)))]);
      clearTimeout(timer);
      const error = gaveUp
        ? new StorageDaemonError('qemu-storage-daemon was stopped as it started: the job was cancelled', true)
        : await why(exitedByItself ? `exited (code ${String(code)}) before its monitor answered` : `did not answer on ${socket} within ${timeoutMs} ms${stuck}`);
      if (!options.runtimeDir) await rm(runtimeDir, { recursive: true, force: true });
      throw error;
    }
    return new StorageDaemon(pid, socket, runtimeDir, qmp);
  }

  /** Reconnects to a daemon a previous Strata started (after checking the pid is still that daemon). */
  static async attach(pid: number, socket: string, runtimeDir: string): Promise<StorageDaemon> {
    if (!(await isOurDaemon(pid, socket))) throw new StorageDaemonError(`process ${pid} is not the qemu-storage-daemon of ${socket}`);
    return new StorageDaemon(pid, socket, runtimeDir, await QmpClient.connect(socket));
  }

  get alive(): boolean {
    return isAlive(this.pid);
  }

  /**
   * `quit` (QEMU flushes and closes every image), then SIGKILL if the process is still there after
   * `timeoutMs`. Resolves once the process is gone, and removes the runtime folder.
   */
  stop(timeoutMs = 10_000): Promise<void> {
    this.#stopping ??= (async () => {
      // Not awaited: a hung daemon never answers, and the wait below is what bounds the stop.
      if (!this.qmp.closed) void this.qmp.execute('quit').catch(() => undefined);
      if (!(await waitUntil(() => !isAlive(this.pid), timeoutMs))) {
        process.kill(this.pid, 'SIGKILL');
        await waitUntil(() => !isAlive(this.pid), 5_000);
      }
      this.qmp.close();
      await rm(this.runtimeDir, { recursive: true, force: true });
    })();
    return this.#stopping;
  }
}
