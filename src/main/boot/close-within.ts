// The bound both shells put on closing the core when they stop: `npm run serve` on a signal, the
// desktop app when it quits. Block jobs keep running in libvirt either way.
import { log } from '../log/logger.ts';

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
