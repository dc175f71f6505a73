// Chain checks and host capabilities as the window shows them: a check runs when asked (it reads
// every layer, so it is never automatic), keeps its answer until the domain changes, and each
// host's capabilities are read once, again when the host reconnects. One store per app, reached
// through useHealth().
import { SvelteMap } from 'svelte/reactivity';
import type { StrataClient } from '../../../shared/bridge.ts';
import type { ChainCheck, HostCapabilities } from '../../../shared/health.ts';
import { toShownError, type ShownError } from './errors.ts';
import { useStrata, type Strata } from './strata.svelte.ts';

export interface CheckRef {
  hostId: string;
  domain: string;
  disk: string;
}

/** One disk's check: running, its latest answer, or why it could not run. */
export class DiskCheck {
  busy = $state(false);
  result = $state.raw<ChainCheck | null>(null);
  error = $state.raw<ShownError | null>(null);
  /** The domain changed since the answer: the chain may not be the one checked. */
  stale = $state(false);
  readonly #client: StrataClient;
  readonly #ref: CheckRef;

  constructor(client: StrataClient, ref: CheckRef) {
    this.#client = client;
    this.#ref = ref;
  }

  async run(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    this.error = null;
    try {
      this.result = await this.#client.call('chain.check', { ...this.#ref });
      this.stale = false;
    } catch (err) {
      this.error = toShownError(err);
    } finally {
      this.busy = false;
    }
  }
}

export class HealthStore {
  readonly #client: StrataClient;
  // Plain: a check is made when a disk first asks, inside its derived read; its fields are the state.
  readonly #checks = new Map<string, DiskCheck>();
  readonly #capabilities = new SvelteMap<string, HostCapabilities>();
  readonly #asked = new Set<string>();

  constructor(client: StrataClient) {
    this.#client = client;
    client.on('domain.changed', ({ hostId, domain }) => {
      for (const [key, check] of this.#checks) if (key.startsWith(`${hostId}\n${domain}\n`) && check.result) check.stale = true;
    });
    // A host that reconnects may be another libvirt (upgraded, restarted): read again when asked.
    client.on('host', (info) => {
      if (info.state !== 'connected') this.#capabilities.delete(info.id);
    });
  }

  check(ref: CheckRef): DiskCheck {
    const key = `${ref.hostId}\n${ref.domain}\n${ref.disk}`;
    let entry = this.#checks.get(key);
    if (!entry) {
      entry = new DiskCheck(this.#client, ref);
      this.#checks.set(key, entry);
    }
    return entry;
  }

  /**
   * The host's capabilities; null until read. The first question starts the read, outside the
   * reactive read that asked (a derived value may not change state).
   */
  capabilities(hostId: string): HostCapabilities | null {
    if (!this.#capabilities.has(hostId) && !this.#asked.has(hostId)) {
      this.#asked.add(hostId);
      queueMicrotask(() => {
        this.#client.call('host.capabilities', { hostId }).then(
          (caps) => this.#capabilities.set(hostId, caps),
          () => undefined,
        ).finally(() => this.#asked.delete(hostId));
      });
    }
    return this.#capabilities.get(hostId) ?? null;
  }
}

const stores = new WeakMap<Strata, HealthStore>();

export function useHealth(): HealthStore {
  const strata = useStrata();
  let store = stores.get(strata);
  if (!store) {
    store = new HealthStore(strata.transport.client);
    stores.set(strata, store);
  }
  return store;
}
