// Reconnect delays: quick at first (a restarting libvirtd is back within seconds), then capped so
// a host that is down for long is still retried every half minute.
export function backoffMs(attempt: number, baseMs = 500, capMs = 30_000): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
}
