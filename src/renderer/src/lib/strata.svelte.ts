// Wires the transport, the stores and the server's events together: what to read on start,
// which event re-reads what, and the full re-read after the connection (or libvirt) comes back.
import { Connection } from './connection.svelte.ts';
import { DomainStore } from './domains.svelte.ts';
import { JobStore } from './jobs.svelte.ts';

export class Strata {
  readonly connection: Connection;
  readonly domains: DomainStore;
  readonly jobs: JobStore;
  readonly #stops: (() => void)[] = [];

  constructor(connection = new Connection()) {
    this.connection = connection;
    const client = connection.client;
    this.domains = new DomainStore(client);
    this.jobs = new JobStore(client);

    // Listen before the first read so nothing falls between the read and the events.
    this.#stops.push(
      client.on('job', (job) => {
        if (job.hostId === this.domains.host?.id) this.jobs.upsert(job);
      }),
      client.on('domain.changed', ({ hostId, domain }) => {
        if (hostId !== this.domains.host?.id) return;
        void this.domains.refreshList();
        void this.domains.refreshDomain(domain);
      }),
      client.on('host', (info) => {
        if (this.domains.hostChanged(info)) void this.#reload();
      }),
      // A job ending changes the chain (a pull drops layers); re-read even if the server's
      // domain.changed event were to arrive late or not at all.
      this.jobs.onEnd((job) => {
        if (job.hostId === this.domains.host?.id) void this.domains.refreshDomain(job.domain);
      }),
      connection.onReopen(() => void this.start()),
    );
  }

  /** Reads the host, then its domains, jobs and the selected domain. */
  async start(): Promise<void> {
    const host = await this.domains.loadHost();
    if (host) await this.#reload();
  }

  async #reload(): Promise<void> {
    const host = this.domains.host;
    if (!host) return;
    await Promise.all([this.domains.refreshAll(), this.jobs.load(host.id)]);
  }

  destroy(): void {
    for (const stop of this.#stops.splice(0)) stop();
  }
}
