// A client of the headless server's WebSocket, speaking the page's protocol (src/shared/contract.ts).
import WebSocket from 'ws';
import type { ServerMessage } from '../../src/shared/contract.ts';

export class WsClient {
  readonly #ws: WebSocket;
  #nextId = 1;
  readonly #pending = new Map<number, (m: ServerMessage) => void>();
  onEvent: (event: string, data: unknown) => void = () => undefined;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as ServerMessage;
      if (m.type === 'event') this.onEvent(m.event, m.data);
      else this.#pending.get(m.id)?.(m);
    });
  }

  /** `pageUrl` is what serve printed: http://host:port/?token=… */
  static open(pageUrl: string): Promise<WsClient> {
    const page = new URL(pageUrl);
    const ws = new WebSocket(`ws://${page.host}/ws?token=${page.searchParams.get('token') ?? ''}`, { origin: page.origin });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new WsClient(ws)));
      ws.once('error', reject);
    });
  }

  request(method: string, params: unknown): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (m) => {
        this.#pending.delete(id);
        if (m.type === 'response' && m.ok) resolve(m.result);
        else reject(new Error(`${method}: ${m.type === 'response' && !m.ok ? m.error.message : 'unexpected reply'}`));
      });
      this.#ws.send(JSON.stringify({ type: 'request', id, method, params }));
    });
  }

  close(): void {
    this.#ws.close();
  }
}
