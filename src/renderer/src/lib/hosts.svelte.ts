// The window's hosts: every host Strata knows, each with its domains, and the details (disks and
// chains) of the domains looked at. Fed by calls made on start, on "Refresh", on `host`,
// `host.removed` and `domain.changed` events, and after a reconnection; never polled. (The hosts
// saved on disk are the main process's SavedHosts.)
import type { StrataClient } from '../../../shared/bridge.ts';
import type { DomainDetail, DomainSummary, HostInfo, HostLimits } from '../../../shared/model.ts';
import { SvelteMap } from 'svelte/reactivity';
import { coalesced } from './coalesce.ts';
import { toShownError, type ShownError } from './errors.ts';

/** One domain's detail as last read, and how the latest read went. */
export class DomainEntry {
  readonly hostId: string;
  readonly name: string;
  detail = $state.raw<DomainDetail | null>(null);
  loading = $state(false);
  error = $state.raw<ShownError | null>(null);
  /** Re-reads the domain; concurrent calls collapse into one extra read. */
  readonly refresh: () => Promise<void>;

  constructor(hostId: string, name: string, client: StrataClient) {
    this.hostId = hostId;
    this.name = name;
    this.refresh = coalesced(async () => {
      this.loading = true;
      try {
        this.detail = await client.call('domain.get', { hostId, domain: name });
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

/** A host, its connection state as the server last said, and its domain list. */
export class HostEntry {
  info: HostInfo;
  domains = $state.raw<DomainSummary[]>([]);
  /** False until domains.list has answered once. */
  domainsLoaded = $state(false);
  listLoading = $state(false);
  listError = $state.raw<ShownError | null>(null);
  expanded = $state(true);
  readonly refreshList: () => Promise<void>;

  constructor(info: HostInfo, client: StrataClient) {
    this.info = $state.raw(info);
    this.refreshList = coalesced(async () => {
      this.listLoading = true;
      try {
        this.domains = await client.call('domains.list', { hostId: this.info.id });
        this.listError = null;
        this.domainsLoaded = true;
      } catch (error) {
        this.listError = toShownError(error);
      } finally {
        this.listLoading = false;
      }
    });
  }

  get id(): string {
    return this.info.id;
  }
}

export interface Selection {
  hostId: string;
  domain: string;
}

export class HostStore {
  readonly #client: StrataClient;
  /** Replaced whole when a host comes or goes; each entry's own state changes in place. */
  hosts = $state.raw<HostEntry[]>([]);
  /** False until hosts.list has answered once (successfully or not). */
  loaded = $state(false);
  error = $state.raw<ShownError | null>(null);
  selected = $state.raw<Selection | null>(null);
  /** Narrows every host's domain list by name. */
  filter = $state('');
  readonly #details = new SvelteMap<string, DomainEntry>();

  constructor(client: StrataClient) {
    this.#client = client;
  }

  host(hostId: string): HostEntry | undefined {
    return this.hosts.find((h) => h.id === hostId);
  }

  get selectedEntry(): DomainEntry | null {
    const s = this.selected;
    return s === null ? null : (this.#details.get(key(s)) ?? null);
  }

  /** Reads the hosts, keeping the entries (and their expanded state) of those still there. */
  async load(): Promise<void> {
    try {
      const infos = await this.#client.call('hosts.list', {});
      this.hosts = infos.map((info) => {
        const entry = this.host(info.id);
        if (!entry) return new HostEntry(info, this.#client);
        entry.info = info;
        return entry;
      });
      this.error = null;
    } catch (error) {
      this.error = toShownError(error);
    } finally {
      this.loaded = true;
    }
  }

  /** Re-reads every host's domains and the selected domain. */
  async refreshAll(): Promise<void> {
    const selected = this.selectedEntry;
    await Promise.all([...this.hosts.map((h) => h.refreshList()), selected?.refresh()]);
  }

  select(hostId: string, domain: string): void {
    this.selected = { hostId, domain };
    void this.#entry(hostId, domain).refresh();
  }

  /** Re-reads a domain if it has been looked at, and its host's list (its state may differ). */
  domainChanged(hostId: string, domain: string): void {
    void this.host(hostId)?.refreshList();
    void this.#details.get(key({ hostId, domain }))?.refresh();
  }

  /** A `host` event. Returns true when the host came back (its view must be re-read). */
  hostChanged(info: HostInfo): boolean {
    const entry = this.host(info.id);
    if (!entry) {
      const added = new HostEntry(info, this.#client);
      this.hosts = [...this.hosts, added];
      if (info.state === 'connected') void added.refreshList();
      return false;
    }
    const cameBack = entry.info.state !== 'connected' && info.state === 'connected';
    entry.info = info;
    return cameBack;
  }

  hostRemoved(hostId: string): void {
    this.hosts = this.hosts.filter((h) => h.id !== hostId);
    if (this.selected?.hostId === hostId) this.selected = null;
    for (const [k, entry] of this.#details) if (entry.hostId === hostId) this.#details.delete(k);
  }

  async add(uri: string, label: string | undefined, readOnly: boolean): Promise<HostInfo> {
    const info = await this.#client.call('hosts.add', { uri, readOnly, ...(label ? { label } : {}) });
    this.hostChanged(info);
    void this.host(info.id)?.refreshList();
    return info;
  }

  async remove(hostId: string): Promise<void> {
    await this.#client.call('hosts.remove', { hostId });
    this.hostRemoved(hostId);
  }

  async setLimits(hostId: string, limits: HostLimits): Promise<void> {
    this.hostChanged(await this.#client.call('hosts.setLimits', { hostId, ...limits }));
  }

  async createLab(hostId: string): Promise<string> {
    const detail = await this.#client.call('lab.create', { hostId });
    await this.host(hostId)?.refreshList();
    this.select(hostId, detail.name);
    return detail.name;
  }

  async removeLab(hostId: string, domain: string): Promise<void> {
    await this.#client.call('lab.remove', { hostId, domain });
    if (this.selected?.hostId === hostId && this.selected.domain === domain) this.selected = null;
    this.#details.delete(key({ hostId, domain }));
    await this.host(hostId)?.refreshList();
  }

  #entry(hostId: string, domain: string): DomainEntry {
    const k = key({ hostId, domain });
    let entry = this.#details.get(k);
    if (!entry) {
      entry = new DomainEntry(hostId, domain, this.#client);
      this.#details.set(k, entry);
    }
    return entry;
  }
}

function key(s: Selection): string {
  return `${s.hostId}/${s.domain}`;
}

/** Practice lab domains, which the lab can remove (the server refuses any other name). */
export function isPracticeLab(domain: string): boolean {
  return /^strata-lab-\d+$/.test(domain);
}
