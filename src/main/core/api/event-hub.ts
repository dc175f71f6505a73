// The one stream of events from the core to whoever listens (IPC, WebSocket, tests).
import type { EventName, Events } from '../../../shared/contract.ts';

export type HubListener = <E extends EventName>(event: E, data: Events[E]) => void;

export class EventHub {
  readonly #listeners = new Set<HubListener>();
  readonly #watchers = new Set<() => void>();

  emit<E extends EventName>(event: E, data: Events[E]): void {
    for (const listener of this.#listeners) listener(event, data);
  }

  /** Returns a function that removes the listener. */
  on(listener: HubListener): () => void {
    this.#listeners.add(listener);
    for (const w of this.#watchers) w();
    return () => this.#listeners.delete(listener);
  }

  /** Called whenever a listener is added. */
  onWatch(callback: () => void): void {
    this.#watchers.add(callback);
  }

  /** Someone watches: polling for progress is only worth it then. */
  get watched(): boolean {
    return this.#listeners.size > 0;
  }
}
