// How the shells stop. `npm run serve`: the first SIGINT or SIGTERM closes the server and the
// core (the connections, the history's last write) within a bound, then exits; a second one exits
// at once. Block jobs keep running in libvirt.
// Nothing here loads the addon, so the server's entry can import it before the core.
import { constants } from 'node:os';
import { closeTimeoutMs, closeWithin } from '../boot/close-within.ts';
import { flushLogs, log } from '../log/logger.ts';

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
