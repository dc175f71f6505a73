// The renderer's side of the contract: a typed client over any transport that can send a
// request and deliver pushed events (the Electron preload, or a WebSocket in a browser).
import type { EventName, Events, Method, Params, Result } from './contract.ts';
import { StrataError, type ErrorEnvelope } from './errors.ts';

export type Reply = { ok: true; result: unknown } | { ok: false; error: ErrorEnvelope };

export interface Bridge {
  request(method: string, params: unknown): Promise<Reply>;
  /** Returns a function that stops the listener. */
  onEvent(listener: (event: EventName, data: unknown) => void): () => void;
}

export class StrataClient {
  readonly #bridge: Bridge;

  constructor(bridge: Bridge) {
    this.#bridge = bridge;
  }

  async call<M extends Method>(method: M, params: Params<M>): Promise<Result<M>> {
    const reply = await this.#bridge.request(method, params);
    if (!reply.ok) throw StrataError.fromEnvelope(reply.error);
    return reply.result as Result<M>;
  }

  on<E extends EventName>(event: E, listener: (data: Events[E]) => void): () => void {
    return this.#bridge.onEvent((name, data) => {
      if (name === event) listener(data as Events[E]);
    });
  }
}
