// The headless mode: the renderer over HTTP and the contract over a WebSocket, on loopback unless
// told otherwise, behind a token, answering only requests that name it as itself (Host, Origin).
// It is a thin adapter: every request goes to the core's dispatcher.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ClientMessage, ServerMessage } from '../../shared/contract.ts';
import { contentSecurityPolicyHeader } from '../../shared/csp.ts';
import type { StrataCore } from '../core/api/core.ts';
import { log } from '../log/logger.ts';
import { allowedHosts, defaultListen, hostRefusal, urlHost } from './listen-address.ts';
import { readStatic } from './static-files.ts';
import { authorise, cookieName, newToken } from './token.ts';

export interface HeadlessServer {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

const maxMessageBytes = 1 << 20;

function refuse(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

// A request line's target as a URL, or null. It is read as a path: `new URL('//x', base)` would
// take 'x' for a host name and throw on one it cannot parse ('//', '//%00'), and a throw here
// ended the process, for anyone who could reach the port, token or not.
function requestUrl(target: string | undefined): URL | null {
  if (target === undefined || !target.startsWith('/')) return null;
  try {
    return new URL(`http://strata${target}`);
  } catch (err) {
    log.debug('unreadable request target', { target, err });
    return null;
  }
}

function parseClientMessage(raw: string): ClientMessage | null {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (err) {
    // The client hears of it: its socket is closed with the expected form as the reason.
    log.debug('WebSocket message is not JSON', { err });
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const m = v as Record<string, unknown>;
  if (m['type'] !== 'request' || typeof m['id'] !== 'number' || !Number.isSafeInteger(m['id'])) return null;
  return { type: 'request', id: m['id'], method: m['method'] as string, params: m['params'] };
}

export async function startHeadlessServer(
  core: Pick<StrataCore, 'dispatcher' | 'hub'>,
  options: { port: number; staticDir: string; token?: string; listen?: string },
): Promise<HeadlessServer> {
  const token = options.token ?? newToken();
  const listen = options.listen ?? defaultListen;
  let allowed = new Set<string>();

  const server: Server = createServer((req, res) => {
    void (async () => {
      const misnamed = hostRefusal(req.headers, allowed);
      if (misnamed) {
        log.warn('HTTP request refused', { why: misnamed, path: req.url });
        refuse(res, 403, `Forbidden: ${misnamed}. Open the URL that \`npm run serve\` printed.\n`);
        return;
      }
      const url = requestUrl(req.url);
      if (!url) {
        refuse(res, 400, 'Bad request\n');
        return;
      }
      const how = authorise(req, url, token);
      if (!how) {
        refuse(res, 403, 'Forbidden: open the full URL that `npm run serve` printed; it carries the access token.\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        refuse(res, 405, 'Method not allowed\n');
        return;
      }
      const file = await readStatic(options.staticDir, url.pathname);
      if (!file) {
        refuse(res, 404, 'Not found\n');
        return;
      }
      const headers: Record<string, string> = {
        'content-type': file.contentType,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        // The page's own policy again as a header: the one way to say frame-ancestors.
        'content-security-policy': contentSecurityPolicyHeader,
      };
      if (how === 'query') headers['set-cookie'] = `${cookieName}=${token}; HttpOnly; SameSite=Strict; Path=/`;
      res.writeHead(200, headers);
      res.end(req.method === 'HEAD' ? undefined : file.body);
    })().catch((err: unknown) => {
      // One request's failure must not end the server (an unhandled rejection would).
      log.error('HTTP request failed', { err, path: req.url });
      if (!res.headersSent) refuse(res, 500, 'Internal error\n');
      else res.destroy();
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: maxMessageBytes });
  server.on('upgrade', (req, socket, head) => {
    const misnamed = hostRefusal(req.headers, allowed);
    const url = requestUrl(req.url);
    if (misnamed || url?.pathname !== '/ws' || !authorise(req, url, token)) {
      log.warn('WebSocket refused', { why: misnamed ?? (url?.pathname !== '/ws' ? 'not /ws' : 'no valid token') });
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveSocket(ws));
  });

  function serveSocket(ws: WebSocket): void {
    const send = (m: ServerMessage): void => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
    };
    const stop = core.hub.on((event, data) => send({ type: 'event', event, data }));
    log.debug('WebSocket opened', { clients: wss.clients.size });
    ws.on('close', (code) => {
      stop();
      log.debug('WebSocket closed', { code, clients: wss.clients.size });
    });
    // A broken frame or a reset peer: ws closes the socket itself; without a listener the
    // error would end the process.
    ws.on('error', (err) => log.warn('WebSocket error; the socket is closed, the browser reconnects', { err }));
    ws.on('message', (raw) => {
      const text = Array.isArray(raw) ? Buffer.concat(raw).toString('utf8') : raw.toString();
      const msg = parseClientMessage(text);
      if (!msg) {
        ws.close(1003, 'expected {"type":"request","id":<integer>,"method":…,"params":…}');
        return;
      }
      void core.dispatcher.handle(msg.method, msg.params).then((reply) => send({ type: 'response', id: msg.id, ...reply }));
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, listen, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  allowed = allowedHosts(listen, port);
  // On a wildcard address the URL names loopback: the server has no one name of its own.
  const shown = listen === '0.0.0.0' || listen === '::' ? defaultListen : urlHost(listen);

  return {
    url: `http://${shown}:${port}/?token=${token}`,
    port,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
