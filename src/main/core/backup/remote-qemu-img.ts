// A qemu-img run on a remote host over the host's ssh: its pid (the first line it prints), its -p
// progress, its end, and an abort that reaches the remote process. Ending the local ssh is not
// enough: over a shared connection (ControlMaster) the master holds the command's output, and
// qemu-img ignores SIGPIPE, so the remote process would run on, and the job with it, to its end.
import type { Readable } from 'node:stream';
import { log } from '../../log/logger.ts';

/** How long an abort waits for the remote qemu-img's pid before it gives up on the remote end. */
export const PID_WAIT_MS = 15_000;

export interface RemoteChild {
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exitCode: number | null;
  kill(signal: NodeJS.Signals): boolean;
  once(event: 'close', listener: (code: number | null) => void): unknown;
}

export interface RemoteKiller {
  readonly remote: string;
  kill(pid: number): Promise<void>;
}

export interface RemoteQemuImg {
  /** The last -p figure, 0 to 100. */
  percent(): number;
  /** What it printed on stderr so far. */
  stderr(): string;
  readonly cancelled: boolean;
  cancel(): Promise<void>;
}

/** qemu-img's -p progress, "(12.34/100%)", the last one in `text`; null before the first. */
export function lastPercent(text: string): number | null {
  const all = [...text.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)];
  const last = all.at(-1)?.[1];
  return last === undefined ? null : Number(last);
}

/** `child` runs `sh -c 'echo "$$"; exec qemu-img …'` on the host; `onClose` gets its exit code and this run. */
export function watchRemoteQemuImg(files: RemoteKiller, child: RemoteChild, onClose: (code: number | null, run: RemoteQemuImg) => void, pidWaitMs = PID_WAIT_MS): RemoteQemuImg {
  let out = '';
  let err = '';
  let pid: number | null = null;
  let cancelled = false;
  let percent = 0;
  const killRemote = (known: number) =>
    files.kill(known).catch((e: unknown) => {
      // Safe to go on: the job still ends when the remote command does, and its partial file is removed then.
      log.warn('could not end the remote qemu-img; the job ends when it does', { remote: files.remote, pid: known, reason: e instanceof Error ? e.message : String(e) });
    });
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    out += c;
    const firstLine = /^(\d+)\n/.exec(out);
    if (pid === null && firstLine) {
      pid = Number(firstLine[1]);
      // Aborted before the remote process said who it is: end it now that it has.
      if (cancelled) void killRemote(pid);
    }
    percent = lastPercent(out.slice(-200)) ?? percent;
    if (out.length > 4096) out = out.slice(-200);
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const run: RemoteQemuImg = {
    percent: () => percent,
    stderr: () => err,
    get cancelled() {
      return cancelled;
    },
    cancel: async () => {
      cancelled = true;
      if (pid !== null) {
        await killRemote(pid);
        return;
      }
      // Its pid is on its way. If that never comes, the link is stuck before the command ran:
      // ending the local ssh then is all there is to do.
      setTimeout(() => {
        if (pid !== null || child.exitCode !== null) return;
        log.warn('the remote qemu-img never said its pid; ending the local ssh', { remote: files.remote });
        child.kill('SIGTERM');
      }, pidWaitMs).unref();
    },
  };
  child.once('close', (code) => onClose(code, run));
  return run;
}
