// How the shells stop. `npm run serve`: the first SIGINT or SIGTERM closes the server and the
// core (the connections, the history's last write) within a bound, then exits; a second one exits
// at once. The desktop app uses the same bound when it quits. Block jobs keep running in libvirt.
// Nothing here loads the addon, so the server's entry can import it before the core.
import { constants } from 'node:os';
import { flushLogs, log } from '../log/logger.ts';

/** How long stopping waits for the core to close before exiting anyway. */
export const closeTimeoutMs = 5000;

/**
 * Runs `close` for at most `timeoutMs`: quitting must not hang on a host that does not answer.
 * Resolves to true when it closed, false (logged) when it failed or the time ran out first.
 */
export async function closeWithin(close: () => Promise<void>, timeoutMs: number = closeTimeoutMs): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  const closed = close().then(
    () => true,
    (err: unknown) => {
      // Exiting anyway is safe: jobs run in QEMU, and the history's last write is atomic.
      log.error('closing failed; exiting anyway (running block jobs go on in libvirt)', { err });
      return null;
    },
  );
  const outcome = await Promise.race([closed, timedOut]);
  clearTimeout(timer);
  if (outcome === false) log.warn(`closing took more than ${timeoutMs} ms; exiting anyway (running block jobs go on in libvirt)`);
  return outcome === true;
}

type StopSignal = 'SIGINT' | 'SIGTERM';

export interface SignalSource {
  on(signal: StopSignal, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface StopOptions {
  /** Closes everything; awaited for at most `timeoutMs`. */
  stop: () => Promise<void>;
  exit: (code: number) => void;
  source?: SignalSource;
  timeoutMs?: number;
}

/** Exit codes: 0 closed, 1 closing failed or timed out, 128 + the signal's number for a second signal. */
export function stopOnSignals(options: StopOptions): void {
  const source = options.source ?? process;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn(`${signal} again: exiting at once`);
      flushLogs();
      options.exit(128 + (constants.signals[signal] ?? 0));
      return;
    }
    stopping = true;
    log.info(`${signal}: stopping (send it again to exit at once)`);
    void closeWithin(options.stop, options.timeoutMs ?? closeTimeoutMs).then((closed) => {
      flushLogs();
      options.exit(closed ? 0 : 1);
    });
  };
  source.on('SIGINT', onSignal);
  source.on('SIGTERM', onSignal);
}
