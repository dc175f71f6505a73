// The host Strata shows, its domains, and the details (disks and chains) of the domains looked
// at. Fed by calls made on start, on "Refresh", on `domain.changed` and `host` events, and after
// a reconnection; never polled.
import type { StrataClient } from '../../../shared/bridge.ts';
import type { DomainDetail, DomainSummary, HostInfo } from '../../../shared/model.ts';
import { SvelteMap } from 'svelte/reactivity';
import { coalesced } from './coalesce.ts';
import { toShownError, type ShownError } from './errors.ts';

/** One domain's detail as last read, and how the latest read went. */
export class DomainEntry {
  readonly name: string;
  detail = $state.raw<DomainDetail | null>(null);
  loading = $state(false);
  error = $state.raw<ShownError | null>(null);
  /** Re-reads the domain; concurrent calls collapse into one extra read. */
  readonly refresh: () => Promise<void>;

  constructor(name: string, read: (name: string) => Promise<DomainDetail>) {
    this.name = name;
    this.refresh = coalesced(async () => {
      this.loading = true;
      try {
        this.detail = await read(name);
        this.error = null;
      } catch (error) {
        this.error = toShownError(error);
        // A domain that no longer exists has no disks to show; other failures keep the last read.
        if (this.error.kind === 'not-found') this.detail = null;
      } finally {
        this.loading = false;
      }
    });
  }
}

export class DomainStore {
  readonly #client: StrataClient;

  /** The host shown: the first one the server lists. */
  host = $state.raw<HostInfo | null>(null);
  /** False until hosts.list has answered once (successfully or not). */
  hostsLoaded = $state(false);
  hostError = $state.raw<ShownError | null>(null);

  domains = $state.raw<DomainSummary[]>([]);
  /** False until domains.list has answered once. */
  domainsLoaded = $state(false);
  listLoading = $state(false);
  listError = $state.raw<ShownError | null>(null);

  selected = $state<string | null>(null);
  readonly entries = new SvelteMap<string, DomainEntry>();

  constructor(client: StrataClient) {
    this.#client = client;
  }

  get selectedEntry(): DomainEntry | null {
    return this.selected === null ? null : (this.entries.get(this.selected) ?? null);
  }

  /** Reads the hosts; the first one becomes the host shown. */
  async loadHost(): Promise<HostInfo | null> {
    try {
      const hosts = await this.#client.call('hosts.list', {});
      this.host = hosts[0] ?? null;
      this.hostError = null;
    } catch (error) {
      this.hostError = toShownError(error);
    } finally {
      this.hostsLoaded = true;
    }
    return this.host;
  }

  /** Re-reads the domain list; concurrent calls collapse into one extra read. */
  readonly refreshList = coalesced(async () => {
    const host = this.host;
    if (!host) return;
    this.listLoading = true;
    try {
      const domains = await this.#client.call('domains.list', { hostId: host.id });
      this.domains = [...domains].sort((a, b) => a.name.localeCompare(b.name));
      this.listError = null;
      this.domainsLoaded = true;
    } catch (error) {
      this.listError = toShownError(error);
    } finally {
      this.listLoading = false;
    }
  });

  select(name: string): void {
    this.selected = name;
    void this.#entry(name).refresh();
  }

  /** Re-reads a domain if it has been looked at (a chain changed, a job ended). */
  refreshDomain(name: string): Promise<void> {
    const entry = this.entries.get(name);
    return entry ? entry.refresh() : Promise.resolve();
  }

  /** Re-reads everything shown: the list and the selected domain. */
  async refreshAll(): Promise<void> {
    const selected = this.selected;
    await Promise.all([this.refreshList(), selected === null ? undefined : this.refreshDomain(selected)]);
  }

  /** A `host` event: the host's connection to libvirt changed. Returns true when it came back. */
  hostChanged(info: HostInfo): boolean {
    if (!this.host || this.host.id !== info.id) return false;
    const cameBack = this.host.state !== 'connected' && info.state === 'connected';
    this.host = info;
    return cameBack;
  }

  #entry(name: string): DomainEntry {
    let entry = this.entries.get(name);
    if (!entry) {
      entry = new DomainEntry(name, (domain) => {
        const host = this.host;
        if (!host) return Promise.reject(new Error('No host to read the domain from'));
        return this.#client.call('domain.get', { hostId: host.id, domain });
      });
      this.entries.set(name, entry);
    }
    return entry;
  }
}
