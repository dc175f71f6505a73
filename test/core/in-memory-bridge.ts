// A Bridge that talks to the core in the same process, with the same JSON round trip the real
// transports do, so tests exercise exactly what crosses IPC or the WebSocket.
import type { Bridge, Reply } from '../../src/shared/bridge.ts';
import type { EventName } from '../../src/shared/contract.ts';
import type { StrataCore } from '../../src/main/core/api/core.ts';

const roundTrip = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

export function inMemoryBridge(core: Pick<StrataCore, 'dispatcher' | 'hub'>): Bridge & { close(): void } {
  const stops: (() => void)[] = [];
  return {
    async request(method: string, params: unknown): Promise<Reply> {
      return roundTrip(await core.dispatcher.handle(method, roundTrip(params)));
    },
    onEvent(listener: (event: EventName, data: unknown) => void): () => void {
      const stop = core.hub.on((event, data) => listener(event, roundTrip(data)));
      stops.push(stop);
      return stop;
    },
    close(): void {
      for (const stop of stops.splice(0)) stop();
    },
  };
}
