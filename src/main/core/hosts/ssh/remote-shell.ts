// Commands on a qemu+ssh host, for what libvirt does not do there (the backup sets' files, qemu-img).
// They go through the user's own OpenSSH, like libvirt's connection: one master connection per host
// (ControlMaster), its socket in Strata's private runtime folder, opened once through the askpass
// (so a password or passphrase is asked once, as a host.prompt), then every command reuses it with
// BatchMode on, so none can ask again. Commands are argument arrays: each word is single-quoted for
// the remote shell, so no path or name is ever read as shell syntax there.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { StrataError } from '../../../../shared/errors.ts';
import { shellQuote } from './askpass.ts';
import { runOpenSsh, type ToolResult } from './openssh.ts';
import type { SshTarget } from './ssh-connector.ts';

/** The ssh options libvirt itself gives ssh for a qemu+ssh URI (but -F), so the files' ssh goes where libvirt's went. */
export function sshArgsOf(uri: string, target: SshTarget): string[] {
  const keyfile = new URL(uri).searchParams.get('keyfile');
  return [
    ...(target.port !== null ? ['-p', String(target.port)] : []),
    ...(target.user !== null ? ['-l', target.user] : []),
    ...(keyfile ? ['-i', keyfile] : []),
    ...(target.noVerify ? ['-o', 'StrictHostKeyChecking=no'] : []),
  ];
}

/** The remote command line for `argv`: every word quoted, so the remote shell runs exactly these words. */
export function remoteCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new StrataError('internal', 'a remote command needs a program');
  return argv.map(shellQuote).join(' ');
}

/**
 * Opens the master connection with `sshCommand` (the askpass wrapper, which adds -F itself): ssh
 * forks into the background once logged in (-f), and its exit code says whether it did. The
 * background master keeps ssh's standard error open, so the exit, not the pipe's end, is awaited.
 */
export function openMaster(sshCommand: string, args: readonly string[], controlPath: string, host: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(sshCommand, [...args, '-M', '-S', controlPath, '-N', '-f', '-T', '-o', 'ControlPersist=no', '-o', 'ServerAliveInterval=30', '--', host], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // What ssh wrote just before it exited may still be in the pipe.
      setImmediate(() => {
        child.stderr.destroy();
        if (code === 0) resolve();
        else reject(new StrataError('unavailable', `ssh could not log in to ${host} for its files: ${stderr.trim() || (signal ? `ended by ${signal}` : `exit code ${code}`)}`));
      });
    });
  });
}

/**
 * Where the master's socket goes, one per host; null when the runtime folder's path is too long for
 * one (a UNIX socket's path is at most 107 bytes, and ssh first binds it under a name 17 longer).
 */
export function controlPathFor(dir: string, hostId: string, uri: string): string | null {
  const path = join(dir, `cm-${createHash('sha256').update(`${hostId}\n${uri}`).digest('hex').slice(0, 16)}`);
  return Buffer.byteLength(path) + 17 <= 107 ? path : null;
}

export class RemoteShell {
  /** How the host is named in words: user@host:port. */
  readonly where: string;
  readonly #host: string;
  readonly #args: readonly string[];
  readonly #controlPath: string;
  readonly #reopen: () => Promise<void>;
  /** The master is this shell's own (else it is the libvirt connection's ssh, which only it ends). */
  #own = false;

  constructor(where: string, host: string, args: readonly string[], configFile: string | null, controlPath: string, reopen: () => Promise<void>) {
    this.where = where;
    this.#host = host;
    this.#args = [...(configFile ? ['-F', configFile] : []), ...args];
    this.#controlPath = controlPath;
    this.#reopen = reopen;
  }

  #through(extra: readonly string[]): string[] {
    return [...this.#args, '-S', this.#controlPath, '-o', 'ControlMaster=no', '-o', 'BatchMode=yes', ...extra, '--', this.#host];
  }

  /** Whether the master connection still serves. */
  async alive(): Promise<boolean> {
    return (await runOpenSsh('ssh', this.#through(['-O', 'check']), { timeoutMs: 10_000 })).code === 0;
  }

  /**
   * Runs `argv` on the host; resolves whatever its exit code. ssh's own failure (exit 255: the
   * connection is gone) opens the master again once and runs it again.
   */
  async run(argv: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
    const once = (): Promise<ToolResult> => runOpenSsh('ssh', [...this.#through(['-T']), remoteCommand(argv)], { timeoutMs: options.timeoutMs ?? 60_000, ...(options.input !== undefined ? { input: options.input } : {}) });
    const first = await once();
    if (first.code !== 255 || (await this.alive())) return first;
    await this.open();
    return once();
  }

  /** Starts `argv` on the host, its output read as it comes (a long qemu-img); ending it is the caller's, on the host. */
  start(argv: readonly string[]): ChildProcessByStdio<null, Readable, Readable> {
    return spawn('ssh', [...this.#through(['-T']), remoteCommand(argv)], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Opens a master of its own (the user may be asked to log in). */
  async open(): Promise<void> {
    await this.#reopen();
    this.#own = true;
  }

  /** Ends its own master connection (ssh's own request to it, not a signal). */
  async close(): Promise<void> {
    if (!this.#own) return;
    this.#own = false;
    await runOpenSsh('ssh', this.#through(['-O', 'exit']), { timeoutMs: 10_000 }).catch(() => undefined);
  }
}
