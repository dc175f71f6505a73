// How the page reaches Strata's main process: the preload's IPC bridge in the desktop app, or a
// WebSocket to `npm run serve` in a browser, and for the WebSocket how it is doing. The IPC
// bridge is always there; the WebSocket may drop, and the UI says so and re-reads everything when
// it comes back. (Not a libvirt connection: a host's own state is in its HostInfo.)
import { StrataClient, type Bridge } from '../../../shared/bridge.ts';
import { WebSocketBridge, serverUrl, type ConnectionState } from './ws-bridge.ts';

export class Transport {
  readonly client: StrataClient;
  readonly kind: 'ipc' | 'websocket';
  /** The WebSocket's state; null in the desktop app, whose IPC bridge cannot drop. */
  state = $state.raw<ConnectionState | null>(null);
  /** Whether the page's address carries a token (the headless server requires one). */
  readonly hasToken: boolean;
  readonly #ws: WebSocketBridge | null;
  readonly #reopenListeners = new Set<() => void>();

  constructor(preload: Bridge | undefined = window.strata) {
    this.hasToken = new URLSearchParams(location.search).get('token') !== null;
    if (preload) {
      this.kind = 'ipc';
      this.#ws = null;
      this.client = new StrataClient(preload);
    } else {
      this.kind = 'websocket';
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

  /** Runs `listener` each time the WebSocket comes back after having been lost. */
  onReopen(listener: () => void): () => void {
    this.#reopenListeners.add(listener);
    return () => this.#reopenListeners.delete(listener);
  }

  reconnectNow(): void {
    this.#ws?.reconnectNow();
  }
}
