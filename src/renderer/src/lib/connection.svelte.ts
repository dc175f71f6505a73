// Which transport the UI talks through, and (for the WebSocket) how that connection is doing.
// In the desktop app the preload's bridge is always there; in a browser the WebSocket may drop,
// and the UI says so and re-reads everything when it comes back.
import { StrataClient, type Bridge } from '../../../shared/bridge.ts';
import { WebSocketBridge, serverUrl, type ConnectionState } from './ws-bridge.ts';

export class Connection {
  readonly client: StrataClient;
  readonly transport: 'electron' | 'websocket';
  /** Null in the desktop app, where there is no connection to lose. */
  state = $state.raw<ConnectionState | null>(null);
  /** Whether the page's address carries a token (the headless server requires one). */
  readonly hasToken: boolean;
  readonly #ws: WebSocketBridge | null;
  readonly #reopenListeners = new Set<() => void>();

  constructor(preload: Bridge | undefined = window.strata) {
    this.hasToken = new URLSearchParams(location.search).get('token') !== null;
    if (preload) {
      this.transport = 'electron';
      this.#ws = null;
      this.client = new StrataClient(preload);
    } else {
      this.transport = 'websocket';
      const ws = new WebSocketBridge(serverUrl());
      this.#ws = ws;
      this.state = ws.state;
      ws.onState((state, previous) => {
        this.state = state;
        // Back after a drop: whatever happened meanwhile was missed, so listeners re-read.
        if (state.status === 'open' && previous.everOpened) {
          for (const listener of this.#reopenListeners) listener();
        }
      });
      this.client = new StrataClient(ws);
    }
  }

  /** Runs `listener` each time the connection comes back after having been lost. */
  onReopen(listener: () => void): () => void {
    this.#reopenListeners.add(listener);
    return () => this.#reopenListeners.delete(listener);
  }

  reconnectNow(): void {
    this.#ws?.reconnectNow();
  }
}
