// Finding jobs Strata did not start. libvirt sends no event when a job starts, so while someone
// watches, each disk of each running domain is asked for its job; after a reconnect everything
// is read again, since events sent while away are lost.
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { log } from '../../log/logger.ts';
import type { ChainIndex } from '../chains/chain-index.ts';
import { parseDomainXml } from '../chains/domain-xml.ts';
import type { JobTracker } from './job-tracker.ts';

export interface DiscoveryDeps {
  jobs: JobTracker;
  /** Told every running domain's chains as they are read. */
  chains: ChainIndex;
  connection(): LibvirtConnection | null;
  watched(): boolean;
  intervalMs: number;
}

export class JobDiscovery {
  readonly #deps: DiscoveryDeps;
  /** Running domains and their disk targets. */
  #disks = new Map<string, string[]>();
  /** The names of the running domains at the last read. */
  #running = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(deps: DiscoveryDeps) {
    this.#deps = deps;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  schedule(): void {
    if (this.#stopped || this.#timer || !this.#deps.watched()) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#sweep().finally(() => this.schedule());
    }, this.#deps.intervalMs);
  }

  /**
   * Reads every running domain's disks again (after lifecycle changes), and settles the jobs of
   * domains that no longer run: a job dies with its domain, and libvirt sends no job event then.
   */
  async refresh(): Promise<void> {
    const conn = this.#deps.connection();
    if (!conn) return;
    await this.#read(conn, false);
    for (const job of this.#deps.jobs.running()) {
      if (!this.#running.has(job.domain)) this.#deps.jobs.settleNow(job.domain, job.disk);
    }
  }

  /**
   * After a (re)connection: reads every running domain, tracks every job found (and marks
   * mirrors the XML shows ready), and settles at once tracked jobs that are gone.
   */
  async reconcile(conn: LibvirtConnection): Promise<void> {
    const seen = await this.#read(conn, true);
    const { jobs } = this.#deps;
    for (const job of jobs.running()) {
      if (!seen.has(`${job.domain}/${job.disk}`)) jobs.settleNow(job.domain, job.disk);
    }
    jobs.wake();
    this.schedule();
  }

  async #read(conn: LibvirtConnection, withJobs: boolean): Promise<Set<string>> {
    const seen = new Set<string>();
    const disks = new Map<string, string[]>();
    const all = await conn.listDomains();
    const domains = all.filter((d) => d.active);
    this.#running = new Set(domains.map((d) => d.name));
    this.#deps.chains.retain(new Set(all.map((d) => d.name)));
    await Promise.all(
      domains.map(async (d) => {
        try {
          const parsed = parseDomainXml(await conn.domainXml(d.name));
          this.#deps.chains.set(d.name, parsed.disks);
          const targets = parsed.disks.filter((x) => x.chain.length > 0).map((x) => x.target);
          disks.set(d.name, targets);
          if (!withJobs) return;
          await Promise.all(
            targets.map(async (target) => {
              const info = await conn.blockJobInfo(d.name, target);
              if (!info) return;
              seen.add(`${d.name}/${target}`);
              this.#deps.jobs.observe(d.name, target, info);
              if (parsed.mirrors.get(target)?.ready) this.#deps.jobs.markReady({ domain: d.name, disk: target }, { reconnected: true });
            }),
          );
        } catch (err) {
          log.debug('a domain stopped while being read: it has no jobs left to find', { domain: d.name, err });
        }
      }),
    );
    this.#disks = disks;
    return seen;
  }

  async #sweep(): Promise<void> {
    const conn = this.#deps.connection();
    if (!conn) return;
    const { jobs } = this.#deps;
    await Promise.all(
      [...this.#disks].flatMap(([domain, targets]) =>
        targets
          .filter((t) => !jobs.active(domain, t))
          .map(async (t) => {
            try {
              const info = await conn.blockJobInfo(domain, t);
              if (info) jobs.observe(domain, t, info);
            } catch (err) {
              log.debug('a domain went away during the sweep; its lifecycle event refreshes the list', { domain, err });
            }
          }),
      ),
    );
  }
}
