// How the desktop app quits: Electron's `will-quit` is held back (preventDefault) until the core
// has closed its connections and written the history, for at most the same bound as the headless
// server, then the app exits (0 once closed, 1 when closing failed or ran out of time). Block
// jobs keep running in libvirt. No Electron import: the app passes its event and app.quit, and
// the tests pass fakes.
import { flushLogs } from '../log/logger.ts';
import { closeTimeoutMs, closeWithin } from '../boot/close-within.ts';

export interface QuitEventLike {
  preventDefault(): void;
}

/** The `will-quit` listener: holds every quit until closing has ended, then calls `exit` once. */
export function quitGate(close: () => Promise<void>, exit: (closed: boolean) => void, timeoutMs: number = closeTimeoutMs): (event: QuitEventLike) => void {
  let state: 'open' | 'closing' | 'closed' = 'open';
  return (event) => {
    if (state === 'closed') return;
    event.preventDefault();
    if (state === 'closing') return;
    state = 'closing';
    void closeWithin(close, timeoutMs).then((closed) => {
      state = 'closed';
      flushLogs();
      exit(closed);
    });
  };
}
