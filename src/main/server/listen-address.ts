// Where the headless server listens, and which names a request may use for it. A browser on this
// machine reaches a loopback server through any web page it opens (DNS rebinding points a foreign
// name at 127.0.0.1), so a request must name the server as itself in Host and, when it has one,
// in Origin; everything else is refused before the token is even looked at.
import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';

export const defaultListen = '127.0.0.1';

/** An address the server may listen on: an IP literal, or 'localhost' (then 127.0.0.1). */
export function parseListenAddress(value: string): string | null {
  if (value === 'localhost') return defaultListen;
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  return isIP(bare) === 0 ? null : bare;
}

export function isLoopback(address: string): boolean {
  return address === '::1' || (isIP(address) === 4 && address.startsWith('127.')) || address === '::ffff:127.0.0.1';
}

const isWildcard = (address: string): boolean => address === '0.0.0.0' || address === '::';

/** An address as it appears in a URL or a Host header. */
export const urlHost = (address: string): string => (isIP(address) === 6 ? `[${address}]` : address);

/**
 * The `host:port` values a request may carry in Host: loopback by number and by name, and the
 * listening address itself. On a wildcard address, this machine's own addresses and name too.
 */
export function allowedHosts(listen: string, port: number): Set<string> {
  const names = new Set<string>([defaultListen, 'localhost', '[::1]', urlHost(listen)]);
  if (isWildcard(listen)) {
    names.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(urlHost(a.address));
  }
  // A browser leaves out the scheme's default port.
  return new Set([...names].flatMap((n) => (port === 80 ? [n, `${n}:80`] : [`${n}:${port}`])));
}

/** Why a request's Host or Origin does not name this server, or null when both do. */
export function hostRefusal(headers: { host?: string | undefined; origin?: string | undefined }, allowed: ReadonlySet<string>): string | null {
  const host = headers.host?.toLowerCase();
  if (host === undefined || !allowed.has(host)) return `Host ${JSON.stringify(headers.host ?? null)} is not this server`;
  const origin = headers.origin;
  // Browsers send Origin with WebSocket handshakes and with any cross-site request: only pages
  // this server served may talk to it. Clients that are not browsers send none.
  if (origin !== undefined && !(origin.startsWith('http://') && allowed.has(origin.slice('http://'.length).toLowerCase()))) {
    return `Origin ${JSON.stringify(origin)} is not this server`;
  }
  return null;
}

/** Said on stderr and in the log when the server can be reached from other machines. */
export function exposedWarning(listen: string): string {
  return (
    `listening on ${listen}, not on loopback: anyone who can reach this address and learns the token can run block jobs ` +
    'on your VMs. The token is then the only protection, and the traffic (the token with it) is unencrypted: ' +
    'use it only on a network you trust, or keep the default and reach it through an SSH tunnel (ssh -L).'
  );
}
