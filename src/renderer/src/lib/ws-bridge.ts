// The browser's transport: a Bridge over the headless server's WebSocket (/ws?token=…).
// Requests are queued while a socket is opening; requests in flight when it closes are rejected
// with an 'unavailable' StrataError (the server may or may not have acted on them). The bridge
// reconnects by itself with exponential backoff and reports every change of state, so the UI
// can say exactly what is going on and re-read everything once it is back.
import type { ClientMessage, EventName, ServerMessage } from '../../../shared/contract.ts';
import type { Bridge, Reply } from '../../../shared/bridge.ts';
import { StrataError } from '../../../shared/errors.ts';

export type ConnectionStatus =
  /** A socket is opening; requests wait for it. */
  | 'connecting'
  /** Connected: requests go straight out. */
  | 'open'
  /** Disconnected, waiting `retryAt` before the next attempt; requests fail at once. */
  | 'waiting';

export interface ConnectionState {
  status: ConnectionStatus;
  /** Whether a socket has ever opened (distinguishes "cannot connect" from "lost it"). */
  everOpened: boolean;
  /** Consecutive failed attempts since the last successful open. */
  failures: number;
  /** Epoch ms of the next attempt while waiting; null otherwise. */
  retryAt: number | null;
  /** The close code and reason of the last socket that closed, if any. */
  lastClose: { code: number; reason: string } | null;
}

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: unknown) => void;
  /** The serialised request, kept until it has been sent. */
  message: string | null;
}

const backoffMs = [500, 1000, 2000, 4000, 8000, 15000, 30000];

/** WebSocket.OPEN, which every WebSocket implementation shares. */
const OPEN = 1;

/** The part of a WebSocket the bridge uses: the browser's, or in tests the `ws` package's. */
export interface BridgeSocket {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
}

/** What the bridge needs from its surroundings; tests give their own clock. */
export interface BridgeDeps {
  openSocket(url: string): BridgeSocket;
  /** Runs `fn` after `ms`; the returned function cancels it. */
  after(ms: number, fn: () => void): () => void;
}

const browserDeps: BridgeDeps = {
  openSocket: (url) => new WebSocket(url),
  after: (ms, fn) => {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

/** An address, as the page's `location` gives it. */
export type PageAddress = { protocol: string; host: string; search: string };

// The browser's global, declared for this module alone so that it also type-checks under Node,
// where its tests run.
declare const location: PageAddress;

/** The WebSocket URL of the server that served this page, with the page's token. */
export function serverUrl(loc: PageAddress = location): string {
  const token = new URLSearchParams(loc.search).get('token');
  const scheme = loc.protocol === 'https:' ? 'wss' : 'ws';
  // Without a token in the address, the server may still know the page by its cookie.
  return `${scheme}://${loc.host}/ws${token === null ? '' : `?token=${encodeURIComponent(token)}`}`;
}

export class WebSocketBridge implements Bridge {
  readonly #url: string;
  readonly #deps: BridgeDeps;
  #socket: BridgeSocket | null = null;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #eventListeners = new Set<(event: EventName, data: unknown) => void>();
  readonly #stateListeners = new Set<(state: ConnectionState, previous: ConnectionState) => void>();
  #cancelRetry: (() => void) | null = null;
  #state: ConnectionState = { status: 'connecting', everOpened: false, failures: 0, retryAt: null, lastClose: null };
  #closedForGood = false;

  constructor(url: string, deps: BridgeDeps = browserDeps) {
    this.#url = url;
    this.#deps = deps;
    this.#connect();
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Called on every change of connection state, with the previous state. */
  onState(listener: (state: ConnectionState, previous: ConnectionState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  onEvent(listener: (event: EventName, data: unknown) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  request(method: string, params: unknown): Promise<Reply> {
    if (this.#closedForGood || this.#state.status === 'waiting') {
      return Promise.reject(
        new StrataError('unavailable', "Not connected to Strata's server, so the request was not sent.", {
          hint: this.#closedForGood ? 'Reload the page to reconnect.' : 'Strata is reconnecting; try again once it is back.',
        }),
      );
    }
    const id = this.#nextId++;
    const message: ClientMessage = { type: 'request', id, method, params };
    return new Promise<Reply>((resolve, reject) => {
      const pending: Pending = { resolve, reject, message: JSON.stringify(message) };
      this.#pending.set(id, pending);
      if (this.#state.status === 'open') this.#flush();
    });
  }

  /** Skips the wait and tries to connect now. */
  reconnectNow(): void {
    if (this.#closedForGood || this.#state.status !== 'waiting') return;
    this.#cancelRetry?.();
    this.#cancelRetry = null;
    this.#connect();
  }

  /** Closes the socket for good and fails whatever is pending. */
  close(): void {
    this.#closedForGood = true;
    this.#cancelRetry?.();
    this.#cancelRetry = null;
    this.#socket?.close(1000, 'closed by the page');
    this.#failPending();
  }

  #setState(patch: Partial<ConnectionState>): void {
    const previous = this.#state;
    this.#state = { ...previous, ...patch };
    for (const listener of this.#stateListeners) {
      try {
        listener(this.#state, previous);
      } catch (error) {
        console.error('Strata: a connection-state listener failed', error);
      }
    }
  }

  #connect(): void {
    this.#setState({ status: 'connecting', retryAt: null });
    let socket: BridgeSocket;
    try {
      socket = this.#deps.openSocket(this.#url);
    } catch (error) {
      // Only a malformed URL throws here; treat it like a failed attempt.
      console.error('Strata: could not create the WebSocket', error);
      this.#scheduleRetry({ code: 0, reason: error instanceof Error ? error.message : String(error) });
      return;
    }
    this.#socket = socket;
    socket.addEventListener('open', () => {
      if (this.#socket !== socket) return;
      this.#setState({ status: 'open', everOpened: true, failures: 0, lastClose: null });
      this.#flush();
    });
    socket.addEventListener('message', (e) => {
      if (this.#socket === socket) this.#receive(e.data);
    });
    socket.addEventListener('close', (e) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#failPending();
      if (!this.#closedForGood) this.#scheduleRetry({ code: e.code, reason: e.reason });
    });
    // An error is always followed by close, which does the work.
    socket.addEventListener('error', () => {});
  }

  #scheduleRetry(lastClose: { code: number; reason: string }): void {
    const failures = this.#state.failures + 1;
    const base = backoffMs[Math.min(failures - 1, backoffMs.length - 1)] ?? 30000;
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.#setState({ status: 'waiting', failures, retryAt: Date.now() + delay, lastClose });
    this.#cancelRetry = this.#deps.after(delay, () => {
      this.#cancelRetry = null;
      this.#connect();
    });
  }

  #flush(): void {
    const socket = this.#socket;
    if (!socket || socket.readyState !== OPEN) return;
    for (const [id, pending] of this.#pending) {
      if (pending.message === null) continue;
      try {
        socket.send(pending.message);
        pending.message = null;
      } catch (error) {
        this.#pending.delete(id);
        pending.reject(new StrataError('unavailable', "Could not send the request to Strata's server.", { cause: error }));
      }
    }
  }

  #failPending(): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      const sent = p.message === null;
      p.reject(
        new StrataError(
          'unavailable',
          sent
            ? "Lost the connection to Strata's server before it answered."
            : "Could not reach Strata's server, so the request was not sent.",
          {
            hint: sent
              ? 'The action may or may not have been carried out; the view is re-read once Strata reconnects.'
              : 'Strata keeps trying to reconnect; try again once it is back.',
          },
        ),
      );
    }
  }

  #receive(raw: unknown): void {
    let message: ServerMessage;
    try {
      message = JSON.parse(String(raw)) as ServerMessage;
    } catch (error) {
      console.error("Strata: ignored a message from the server that is not JSON", error);
      return;
    }
    if (message.type === 'response') {
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.ok) pending.resolve({ ok: true, result: message.result });
      else pending.resolve({ ok: false, error: message.error });
    } else if (message.type === 'event') {
      for (const listener of this.#eventListeners) {
        try {
          listener(message.event, message.data);
        } catch (error) {
          console.error(`Strata: a listener for the '${message.event}' event failed`, error);
        }
      }
    }
  }
}
