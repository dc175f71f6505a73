// A stand-in for the headless server, for the renderer's load only: it serves the built page
// (out/renderer) and answers on /ws with the same messages (src/shared/contract.ts), with one
// connected host without domains and jobs the benchmark makes up. No libvirt behind it: what it
// measures is what the page does with that many events, not how they are produced.
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ServerMessage } from '../../src/shared/contract.ts';
import type { HostInfo, Job } from '../../src/shared/model.ts';
import { repo } from './browser.mts';

const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.woff2': 'font/woff2', '.png': 'image/png' };

export const fakeHost: HostInfo = {
  id: 'default',
  uri: 'test:///fake',
  label: 'test:///fake',
  readOnly: false,
  saved: false,
  state: 'connected',
  reason: null,
  hint: null,
  retryAt: null,
  access: null,
  limits: { maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 0 },
};

export class FakeServer {
  readonly #http: Server;
  readonly #wss = new WebSocketServer({ noServer: true });
  readonly #sockets = new Set<WebSocket>();
  jobs: Job[] = [];

  constructor() {
    const root = join(repo, 'out/renderer');
    this.#http = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const file = normalize(join(root, path === '/' ? 'index.html' : path));
      if (!file.startsWith(root)) {
        res.writeHead(403).end();
        return;
      }
      readFile(file).then(
        (body) => res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body),
        () => res.writeHead(404).end(),
      );
    });
    this.#http.on('upgrade', (req, socket, head) => this.#wss.handleUpgrade(req, socket, head, (ws) => this.#serve(ws)));
  }

  listen(): Promise<string> {
    return new Promise((resolve) => this.#http.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(this.#http.address() as AddressInfo).port}/`)));
  }

  #serve(ws: WebSocket): void {
    this.#sockets.add(ws);
    ws.on('close', () => this.#sockets.delete(ws));
    ws.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { id: number; method: string };
      const results: Record<string, unknown> = { 'hosts.list': [fakeHost], 'domains.list': [], 'jobs.list': this.jobs, 'history.list': [] };
      const reply: ServerMessage =
        m.method in results
          ? { type: 'response', id: m.id, ok: true, result: results[m.method] }
          : { type: 'response', id: m.id, ok: false, error: { kind: 'invalid-request', message: `the fake server does not do ${m.method}`, hint: null, libvirt: null, issues: [] } };
      ws.send(JSON.stringify(reply));
    });
  }

  emitJob(job: Job): void {
    const m = JSON.stringify({ type: 'event', event: 'job', data: job } satisfies ServerMessage);
    for (const ws of this.#sockets) ws.send(m);
  }

  close(): Promise<void> {
    for (const ws of this.#sockets) ws.terminate();
    return new Promise((resolve) => this.#http.close(() => resolve()));
  }
}
