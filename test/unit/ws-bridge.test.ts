// The browser's WebSocket bridge against a real `ws` server on 127.0.0.1: requests queued until the
// socket opens, requests in flight failed when it closes, refusals while away, and the reconnect
// with its growing, jittered backoff. The sockets are real (the `ws` package's client, since
// Node 20 has no WebSocket without a flag); only the clock is the test's, so that waits of 0.5 to
// 30 s are fired when the test says, not slept through.
import assert from 'node:assert/strict';
import { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { serverUrl, WebSocketBridge, type BridgeDeps, type ConnectionState } from '../../src/renderer/src/lib/ws-bridge.ts';
import type { ClientMessage, ServerMessage } from '../../src/shared/contract.ts';
import { StrataError } from '../../src/shared/errors.ts';

/** A server that answers every request with its method name, and can go away and come back. */
class EchoServer {
  #wss: WebSocketServer | null = null;
  port = 0;
  /** Requests received and not answered yet, when answers are held. */
  readonly held: ClientMessage[] = [];
  hold = false;
  #onHeld: (() => void) | null = null;
  connections = 0;

  async start(): Promise<void> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: this.port });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    this.port = (wss.address() as AddressInfo).port;
    wss.on('connection', (socket) => {
      this.connections += 1;
      socket.on('message', (raw) => {
        const message = JSON.parse(String(raw)) as ClientMessage;
        if (this.hold) {
          this.held.push(message);
          this.#onHeld?.();
        } else socket.send(JSON.stringify(answer(message)));
      });
    });
    this.#wss = wss;
  }

  /** Resolves once a request is held (at once if one is). */
  heldRequest(): Promise<void> {
    if (this.held.length > 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onHeld = () => {
        this.#onHeld = null;
        resolve();
      };
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  broadcast(message: ServerMessage): void {
    for (const c of this.#wss?.clients ?? []) c.send(JSON.stringify(message));
  }

  /** Closes every client socket with `code` and stops listening (later attempts are refused). */
  async stop(code = 1001, reason = 'going away'): Promise<void> {
    const wss = this.#wss;
    this.#wss = null;
    if (!wss) return;
    for (const c of wss.clients) c.close(code, reason);
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }
}

function answer(m: ClientMessage): ServerMessage {
  return { type: 'response', id: m.id, ok: true, result: m.method };
}

/** The bridge's surroundings: real sockets, kept for the test to watch; retries wait until fired. */
class ManualClock {
  readonly waits: { ms: number; fn: () => void; cancelled: boolean }[] = [];
  readonly sockets: WebSocket[] = [];

  readonly deps = (): BridgeDeps => ({
    openSocket: (url) => {
      const socket = new WebSocket(url);
      this.sockets.push(socket);
      return socket;
    },
    after: (ms, fn) => {
      const wait = { ms, fn, cancelled: false };
      this.waits.push(wait);
      return () => void (wait.cancelled = true);
    },
  });

  /** The wait scheduled last (the next retry). */
  get pending() {
    const last = this.waits.at(-1);
    return last && !last.cancelled ? last : undefined;
  }

  fire(): void {
    const wait = this.pending;
    assert.ok(wait, 'a retry is scheduled');
    wait.cancelled = true;
    wait.fn();
  }
}

function recordStates(bridge: WebSocketBridge): ConnectionState[] {
  const states: ConnectionState[] = [];
  bridge.onState((s) => states.push(s));
  return states;
}

/** Resolves when the bridge's state is `status` (after `failures` failed attempts): now, or at a change. */
function until(bridge: WebSocketBridge, status: ConnectionState['status'], failures?: number): Promise<void> {
  const reached = (s: ConnectionState) => s.status === status && (failures === undefined || s.failures === failures);
  if (reached(bridge.state)) return Promise.resolve();
  return new Promise((resolve) => {
    const stop = bridge.onState((s) => {
      if (!reached(s)) return;
      stop();
      resolve();
    });
  });
}

async function unavailable(p: Promise<unknown>): Promise<StrataError> {
  const err = await p.then(
    () => assert.fail('expected the request to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof StrataError, String(err));
  assert.equal(err.kind, 'unavailable');
  return err;
}

describe('WebSocketBridge against a real ws server', () => {
  const server = new EchoServer();
  const bridges: WebSocketBridge[] = [];
  const open = (clock = new ManualClock()) => {
    const bridge = new WebSocketBridge(server.url, clock.deps());
    bridges.push(bridge);
    return { bridge, clock };
  };

  before(() => server.start());
  after(async () => {
    for (const b of bridges) b.close();
    await server.stop();
  });

  it('a request made while the socket opens is sent once it is open, and answered', async () => {
    const { bridge } = open();
    assert.equal(bridge.state.status, 'connecting');
    const reply = await bridge.request('hosts.list', {});
    assert.deepEqual(reply, { ok: true, result: 'hosts.list' });
    assert.equal(bridge.state.status, 'open');
    assert.equal(bridge.state.everOpened, true);
  });

  it('events from the server reach every listener, even after one throws', async () => {
    const { bridge } = open();
    await until(bridge, 'open');
    bridge.onEvent(() => {
      throw new Error('a broken listener');
    });
    const seen = new Promise<unknown>((resolve) => bridge.onEvent((event, data) => resolve([event, data])));
    const errors: unknown[] = [];
    const originalError = console.error;
    console.error = (...args: unknown[]) => void errors.push(args);
    try {
      server.broadcast({ type: 'event', event: 'host.removed', data: { hostId: 'h1' } });
      assert.deepEqual(await seen, ['host.removed', { hostId: 'h1' }]);
    } finally {
      console.error = originalError;
    }
    assert.equal(errors.length, 1, 'the failing listener is reported');
  });

  it('losing the server: requests in flight fail, requests while away are refused, and it reconnects with growing, jittered waits', async () => {
    const { bridge, clock } = open();
    const states = recordStates(bridge);
    await until(bridge, 'open');

    server.hold = true;
    const inFlight = bridge.request('jobs.list', {});
    await server.heldRequest();
    await server.stop(1012, 'restarting');

    const lost = await unavailable(inFlight);
    assert.match(lost.message, /Lost the connection .* before it answered/);
    assert.match(lost.hint ?? '', /may or may not have been carried out/);
    await until(bridge, 'waiting', 1);
    assert.deepEqual(bridge.state.lastClose, { code: 1012, reason: 'restarting' });
    assert.equal(bridge.state.everOpened, true, 'it was connected once: the UI says the connection was lost');
    const first = clock.pending;
    assert.ok(first && first.ms >= 400 && first.ms <= 600, `first wait ${first?.ms} ms: 500 ms ± 20 %`);
    assert.ok(bridge.state.retryAt !== null && Math.abs(bridge.state.retryAt - (Date.now() + first.ms)) < 1_000);

    const refused = await unavailable(bridge.request('jobs.list', {}));
    assert.match(refused.message, /not sent/);
    assert.match(refused.hint ?? '', /reconnecting/);

    // The server is down: each attempt is refused and waits longer, up to 30 s.
    const nominal = [1000, 2000, 4000, 8000, 15000, 30000, 30000];
    for (const [i, base] of nominal.entries()) {
      clock.fire();
      await until(bridge, 'waiting', i + 2);
      const wait = clock.pending;
      assert.ok(wait && wait.ms >= base * 0.8 && wait.ms <= base * 1.2, `wait ${i + 2}: ${wait?.ms} ms, expected ${base} ± 20 %`);
      assert.equal(bridge.state.lastClose?.code, 1006, 'a refused connection closes abnormally');
    }

    server.hold = false;
    await server.start();
    clock.fire();
    await until(bridge, 'open');
    assert.deepEqual(
      { failures: bridge.state.failures, retryAt: bridge.state.retryAt, lastClose: bridge.state.lastClose },
      { failures: 0, retryAt: null, lastClose: null },
    );
    assert.deepEqual(await bridge.request('hosts.list', {}), { ok: true, result: 'hosts.list' });
    const path = states.map((s) => s.status).filter((s, i, all) => s !== all[i - 1]);
    assert.deepEqual(path.slice(0, 3), ['open', 'waiting', 'connecting']);
    assert.equal(path.at(-1), 'open');
  });

  it('reconnectNow skips the wait', async () => {
    const { bridge, clock } = open();
    await until(bridge, 'open');
    await server.stop();
    await until(bridge, 'waiting', 1);
    const waited = clock.pending;
    await server.start();
    const connections = server.connections;
    bridge.reconnectNow();
    assert.equal(waited?.cancelled, true, 'the scheduled retry is cancelled');
    await until(bridge, 'open');
    assert.equal(server.connections, connections + 1);
    assert.equal(bridge.state.failures, 0);
  });

  it('close() fails what is in flight, cancels the next attempt, and refuses later requests', async () => {
    const { bridge, clock } = open();
    await until(bridge, 'open');
    server.hold = true;
    const pending = bridge.request('jobs.list', {});
    await server.heldRequest();
    // Listened to after the bridge's own listener: when this fires, the bridge has seen the close.
    const socketClosed = new Promise((resolve) => clock.sockets.at(-1)!.once('close', resolve));
    bridge.close();
    assert.match((await unavailable(pending)).message, /before it answered/);
    await socketClosed;
    assert.equal(clock.waits.length, 0, 'no attempt scheduled after close()');
    assert.match((await unavailable(bridge.request('jobs.list', {}))).hint ?? '', /Reload the page/);
    server.held.length = 0;
    server.hold = false;

    const away = open();
    await until(away.bridge, 'open');
    await server.stop();
    await until(away.bridge, 'waiting', 1);
    const next = away.clock.pending;
    away.bridge.close();
    assert.equal(next?.cancelled, true, 'the scheduled attempt is cancelled');
    assert.equal(away.clock.pending, undefined);
    assert.match((await unavailable(away.bridge.request('jobs.list', {}))).hint ?? '', /Reload the page/);
    await server.start();
  });
});

describe('serverUrl', () => {
  it("takes the page's token, percent-encoded, and the page's scheme", () => {
    assert.equal(serverUrl({ protocol: 'http:', host: '127.0.0.1:8080', search: '?token=a+b/c' }), 'ws://127.0.0.1:8080/ws?token=a%20b%2Fc');
    assert.equal(serverUrl({ protocol: 'https:', host: 'strata.example:443', search: '?token=x' }), 'wss://strata.example:443/ws?token=x');
    assert.equal(serverUrl({ protocol: 'http:', host: 'localhost:1', search: '' }), 'ws://localhost:1/ws', 'without a token, the cookie may still do');
  });
});
