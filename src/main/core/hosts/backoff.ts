// Reconnect delays: quick at first (a restarting libvirtd is back within seconds), then capped
// low, since a retry costs one connection attempt and a user waiting on a restarted daemon
// should not wait half a minute more.
export function backoffMs(attempt: number, baseMs = 500, capMs = 5_000): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
}

/**
 * Quick tries after a watched path changed (a daemon's socket made again), before a failure that
 * needs the user waits again: the socket is bound a moment before the daemon listens on it.
 */
export const watchTriggeredTries = 3;
