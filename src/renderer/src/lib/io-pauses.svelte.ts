// Guests QEMU paused on an I/O error (a full file system), as the space guard saw them: read when a
// domain is shown (`domain.ioPause`), then kept by the `domain.ioPause` events, and resumed through
// `domain.resume`, which the engine refuses while there is still no room.
import { SvelteMap } from 'svelte/reactivity';
import type { StrataClient } from '../../../shared/bridge.ts';
import type { GuestIoPause } from '../../../shared/space-guard.ts';

const key = (hostId: string, domain: string): string => `${hostId}/${domain}`;

export class IoPauseStore {
  readonly #client: StrataClient;
  readonly #pauses = new SvelteMap<string, GuestIoPause>();

  constructor(client: StrataClient) {
    this.#client = client;
  }

  /** Why the guest is paused, when QEMU paused it on an I/O error; null otherwise. */
  of(hostId: string, domain: string): GuestIoPause | null {
    return this.#pauses.get(key(hostId, domain)) ?? null;
  }

  /** Reads it again (a domain shown, or its state changed), with the free space as it is now. */
  async load(hostId: string, domain: string): Promise<void> {
    const pause = await this.#client.call('domain.ioPause', { hostId, domain });
    if (pause) this.apply(pause);
    else this.#pauses.delete(key(hostId, domain));
  }

  apply(pause: GuestIoPause): void {
    if (pause.paused) this.#pauses.set(key(pause.hostId, pause.domain), pause);
    else this.#pauses.delete(key(pause.hostId, pause.domain));
  }

  async resume(hostId: string, domain: string): Promise<void> {
    await this.#client.call('domain.resume', { hostId, domain });
    this.#pauses.delete(key(hostId, domain));
  }
}
