// Wires the transport, the stores and the server's events together: what to read on start,
// which event re-reads what, and the full re-read after the connection (or a host) comes back.
// Components reach the one instance through context (see useStrata).
import { getContext } from 'svelte';
import { Connection } from './connection.svelte.ts';
import { followShell } from './desktop-shell.ts';
import { HostStore } from './hosts.svelte.ts';
import { JobStore } from './jobs.svelte.ts';
import { Notices } from './notices.svelte.ts';
import { Theme } from './theme.svelte.ts';

export type View = 'hosts' | 'jobs';

export class Strata {
  readonly connection: Connection;
  readonly hosts: HostStore;
  readonly jobs: JobStore;
  readonly notices: Notices;
  readonly theme: Theme;
  view = $state<View>('hosts');
  readonly #stops: (() => void)[] = [];

  constructor(connection = new Connection()) {
    this.connection = connection;
    const client = connection.client;
    this.hosts = new HostStore(client);
    this.jobs = new JobStore(client);
    this.notices = new Notices();
    this.theme = new Theme();

    // Listen before the first read so nothing falls between the read and the events.
    this.#stops.push(
      followShell(this),
      client.on('job', (job) => this.jobs.upsert(job)),
      client.on('domain.changed', ({ hostId, domain }) => this.hosts.domainChanged(hostId, domain)),
      // A host back after a loss: what happened meanwhile was missed, so its view is read again.
      client.on('host', (info) => {
        if (this.hosts.hostChanged(info)) void Promise.all([this.jobs.load(), this.hosts.refreshAll()]);
      }),
      client.on('host.removed', ({ hostId }) => this.hosts.hostRemoved(hostId)),
      // A job ending changes the chain; re-read even if domain.changed were to come late.
      this.jobs.onEnd((job) => {
        this.hosts.domainChanged(job.hostId, job.domain);
        void this.jobs.loadHistory();
        this.notices.jobEnded(job);
      }),
      this.jobs.onReady((job) => this.notices.jobReady(job)),
      connection.onReopen(() => void this.start()),
    );
  }

  /** Reads the hosts, then their domains, the jobs and the history. */
  async start(): Promise<void> {
    await this.hosts.load();
    await Promise.all([this.hosts.refreshAll(), this.jobs.load(), this.jobs.loadHistory()]);
  }

  /** Shows a domain in the hosts view (from a toast or the jobs view). */
  show(hostId: string, domain: string): void {
    this.view = 'hosts';
    this.hosts.select(hostId, domain);
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
