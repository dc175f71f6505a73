// The headless server's access token: in the printed URL, then kept in an HttpOnly cookie so the
// page's own asset and WebSocket requests carry it.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const cookieName = 'strata_token';

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieToken(req: IncomingMessage): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === cookieName) return rest.join('=');
  }
  return null;
}

/** Which way the request proved it knows the token: 'query', 'cookie', or null (refuse). */
export function authorise(req: IncomingMessage, url: URL, token: string): 'query' | 'cookie' | null {
  const fromQuery = url.searchParams.get('token');
  if (fromQuery !== null && same(fromQuery, token)) return 'query';
  const fromCookie = cookieToken(req);
  if (fromCookie !== null && same(fromCookie, token)) return 'cookie';
  return null;
}
