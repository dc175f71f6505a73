// Wires the transport, the stores and the server's events together: what to read on start,
// which event re-reads what, and the full re-read after the transport (or a host) comes back.
// Components reach the one instance through context (see useStrata).
import { getContext } from 'svelte';
import { followShell, type ShellTarget } from './desktop-shell.ts';
import { HostStore } from './hosts.svelte.ts';
import { JobStore } from './jobs.svelte.ts';
import { IoPauseStore } from './io-pauses.svelte.ts';
import { Notices } from './notices.svelte.ts';
import { Theme } from './theme.svelte.ts';
import { Transport } from './transport.svelte.ts';

export type View = 'hosts' | 'jobs';

export class Strata implements ShellTarget {
  readonly transport: Transport;
  readonly hosts: HostStore;
  readonly jobs: JobStore;
  readonly ioPauses: IoPauseStore;
  readonly notices: Notices;
  readonly theme: Theme;
  view = $state<View>('hosts');
  readonly #stops: (() => void)[] = [];

  constructor(transport = new Transport()) {
    this.transport = transport;
    const client = transport.client;
    this.hosts = new HostStore(client);
    this.jobs = new JobStore(client);
    this.ioPauses = new IoPauseStore(client);
    this.notices = new Notices();
    this.theme = new Theme();

    // Listen before the first read so nothing falls between the read and the events.
    this.#stops.push(
      followShell(this),
      client.on('job', (event) => this.jobs.apply(event)),
      client.on('domain.changed', ({ hostId, domain }) => this.hosts.domainChanged(hostId, domain)),
      // A host back after a loss: what happened meanwhile was missed, so its view is read again.
      client.on('host', (info) => {
        if (this.hosts.hostChanged(info)) void Promise.all([this.jobs.load(), this.hosts.refreshAll()]);
      }),
      client.on('host.removed', ({ hostId }) => this.hosts.hostRemoved(hostId)),
      client.on('domain.ioPause', (pause) => this.ioPauses.apply(pause)),
      // A job ending changes the chain; re-read even if domain.changed were to come late.
      this.jobs.onEnd((job) => {
        this.hosts.domainChanged(job.hostId, job.domain);
        void this.jobs.loadHistory();
      }),
      this.jobs.onChange((job, transition) => this.notices.tell(job, transition)),
      transport.onReopen(() => void this.start()),
    );
  }

  /** Reads the hosts, then their domains, the jobs and the history. */
  async start(): Promise<void> {
    await this.hosts.load();
    await Promise.all([this.hosts.refreshAll(), this.jobs.load(), this.jobs.loadHistory()]);
  }

  /** Shows a domain in the hosts view (from a toast, the jobs view or a notification). */
  show(hostId: string, domain: string): void {
    this.view = 'hosts';
    this.hosts.select(hostId, domain);
  }

  /** Shows a host in the hosts view, expanded (a second launch named it). */
  async showHost(hostId: string): Promise<void> {
    this.view = 'hosts';
    // A host the shell has just added may not have reached the page's list yet.
    if (!this.hosts.host(hostId)) await this.hosts.load();
    const entry = this.hosts.host(hostId);
    if (entry) entry.expanded = true;
  }

  destroy(): void {
    for (const stop of this.#stops.splice(0)) stop();
  }
}

const contextKey = Symbol('strata');

/** The context to mount the app with, so every component can reach the instance. */
export function strataContext(strata: Strata): Map<symbol, Strata> {
  return new Map([[contextKey, strata]]);
}

export function useStrata(): Strata {
  const strata = getContext<Strata | undefined>(contextKey);
  if (!strata) throw new Error('useStrata(): the app was mounted without strataContext()');
  return strata;
}
