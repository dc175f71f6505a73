// Finding jobs Strata did not start. libvirt sends no event when a job starts, so while someone
// watches, each disk of each running domain is asked for its job; after a reconnect everything
// is read again, since events sent while away are lost. The domains' readings go into the host's
// model, which domain.get then serves; each sweep also reads every running domain's live
// definition, so a chain changed without an event (an external snapshot, a disk attached) is seen.
//
// Never from block statistics: reading them makes libvirt list QEMU's block nodes, and QEMU 7.2
// aborts (qcow2_get_specific_info: Assertion `false' failed) when they are listed while a backup
// another client started formats its target image, or crashes when a block job completes
// meanwhile; the guest is lost. A definition is answered by libvirtd from memory, never by QEMU.
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { libvirtCode } from '../../libvirt/errors.ts';
import { log } from '../../log/logger.ts';
import { diskPrint, type DiskPrint, type DomainModel } from '../chains/domain-model.ts';
import { parseDomainXml, type ParsedDomain } from '../chains/domain-xml.ts';
import type { JobTracker } from './job-tracker.ts';

// Domains read at once. More gain nothing (libvirtd serves 5 requests of a client at a time by
// default) and cost memory: 1,000 XML documents asked for together arrived faster than they were
// parsed, and the garbage collector copied them while they waited.
const READ_LANES = 16;
// The sweep waits at least this many times as long as its last reading took, so that on a host
// with many running domains it costs libvirtd a bounded share of its time whatever their number.
const SWEEP_SPACING = 4;

export interface DiscoveryDeps {
  jobs: JobTracker;
  /** Where every running domain's reading goes, and comes from while it is trusted. */
  model: DomainModel;
  connection(): LibvirtConnection | null;
  /** A domain's disks changed without an event: the model has forgotten it; tell the listeners. */
  changed(domain: string): void;
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
  /**
   * A connection whose driver has no block jobs (libvirt's test driver): asking each disk would
   * only collect the same refusal, once per disk.
   */
  #jobless: LibvirtConnection | null = null;
  /** Every domain's disks as last read (a domain that does not run: none). */
  #prints: DiskPrint[] = [];
  /** How long the last sweep's reading of the definitions took. */
  #readMs = 0;
  /** The connection whose first reading is under way: it does what a sweep would, so none runs meanwhile. */
  #reconciling: LibvirtConnection | null = null;

  constructor(deps: DiscoveryDeps) {
    this.#deps = deps;
  }

  stop(): void {
    this.#stopped = true;
    this.#deps.model.sweeping(false);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  schedule(): void {
    if (this.#stopped || this.#timer) return;
    this.#deps.model.sweeping(this.#deps.watched());
    if (!this.#deps.watched()) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        void this.#sweep()
          .catch((err: unknown) => {
            // The connection closed or libvirtd went away mid-sweep (the host is stopping, or is
            // lost and will reconnect): the next sweep, or the reconnection's reading, reads again.
            log.debug('a sweep stopped part way; the next sweep or reconnection reads everything again', { err });
          })
          .finally(() => this.schedule());
      },
      Math.max(this.#deps.intervalMs, this.#readMs * SWEEP_SPACING),
    );
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
    this.#deps.model.clear();
    this.#reconciling = conn;
    let seen: Set<string>;
    try {
      seen = await this.#read(conn, true);
    } finally {
      if (this.#reconciling === conn) this.#reconciling = null;
    }
    const { jobs } = this.#deps;
    for (const job of jobs.running()) {
      if (!seen.has(`${job.domain}/${job.disk}`)) jobs.settleNow(job.domain, job.disk);
    }
    jobs.wake();
    this.schedule();
  }

  /**
   * `afresh` (after a connection): lists and reads every running domain and asks each disk for
   * its job; domain.get waits for that reading instead of making its own. Otherwise (after a
   * lifecycle event) takes what the model still trusts, so only what changed is read again.
   */
  async #read(conn: LibvirtConnection, afresh: boolean): Promise<Set<string>> {
    const { model } = this.#deps;
    const reading = this.#readDomains(conn, afresh);
    if (afresh) model.settling(reading);
    const read = await reading;
    this.#disks = new Map([...read].map(([name, parsed]) => [name, parsed.disks.filter((x) => x.chain.length > 0).map((x) => x.target)]));
    const seen = new Set<string>();
    if (!afresh) return seen;
    const ask = async ([domain, target]: [string, string]): Promise<void> => {
      try {
        const info = await this.#jobInfo(conn, domain, target);
        if (!info) return;
        seen.add(`${domain}/${target}`);
        this.#deps.jobs.observe(domain, target, info);
        if (read.get(domain)?.mirrors.get(target)?.ready) this.#deps.jobs.markReady({ domain, disk: target }, { reconnected: true });
      } catch (err) {
        log.debug('a domain stopped while being read: it has no jobs left to find', { domain, err });
      }
    };
    await this.#eachDisk(conn, (domain, target) => ask([domain, target]));
    return seen;
  }

  /**
   * Runs `ask` on every disk of every running domain; one disk first, so that a driver without
   * block jobs says so once, not once per disk (a sweep may start while the connection's first
   * reading is still finding that out).
   */
  async #eachDisk(conn: LibvirtConnection, ask: (domain: string, target: string) => Promise<void>): Promise<void> {
    const disks = [...this.#disks].flatMap(([domain, targets]) => targets.map((t): [string, string] => [domain, t]));
    if (disks[0]) await ask(...disks[0]);
    if (this.#jobless === conn) return;
    await Promise.all(disks.slice(1).map((d) => ask(...d)));
  }

  async #readDomains(conn: LibvirtConnection, afresh: boolean): Promise<Map<string, ParsedDomain>> {
    const { model } = this.#deps;
    const at = model.now();
    if (afresh) model.sweeping(this.#deps.watched());
    const all = afresh ? await model.list() : await model.listing();
    const domains = all.filter((d) => d.active);
    this.#running = new Set(domains.map((d) => d.name));
    const read = new Map<string, ParsedDomain>();
    let next = 0;
    const lane = async (): Promise<void> => {
      for (let d = domains[next++]; d; d = domains[next++]) {
        try {
          read.set(d.name, (await (afresh ? model.read(d.name) : model.known(d.name))).parsed);
        } catch (err) {
          log.debug('a domain stopped while being read: it has no jobs left to find', { domain: d.name, err });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_LANES, domains.length) }, lane));
    this.#prints = all.map((d) => printOf(d.name, read.get(d.name)));
    // At a connection these readings are the baseline the sweeps compare with, and confirm them
    // until the first sweep; the domains with named snapshots are listed meanwhile, for the domain
    // views that follow.
    if (afresh) {
      model.sweep(this.#prints, at);
      await model.snapshotted(() => conn.domainsWithSnapshots());
    }
    return read;
  }

  /** Compares every domain's disks with the model's; returns whether one changed without an event. */
  async #compare(conn: LibvirtConnection): Promise<boolean> {
    const { model } = this.#deps;
    const at = model.now();
    // A driver without block jobs (libvirt's test driver) runs no QEMU: nothing changes a chain
    // there but calls that send events, and reading a large host's every definition each sweep
    // would find nothing. What was last read stays confirmed.
    if (this.#jobless === conn) {
      model.sweep(this.#prints, at);
      return false;
    }
    let prints: DiskPrint[];
    try {
      prints = await this.#readPrints(conn);
    } catch (err) {
      log.debug('the domains could not be listed; the model trusts its readings for the interval only', { err });
      model.sweep(null, at);
      return false;
    } finally {
      this.#readMs = model.now() - at;
    }
    this.#prints = prints;
    const changed = model.sweep(prints, at);
    for (const domain of changed) this.#deps.changed(domain);
    return changed.length > 0;
  }

  /** Every domain's disks, from the live definitions of those that run; one that stops meanwhile is left out. */
  async #readPrints(conn: LibvirtConnection): Promise<DiskPrint[]> {
    const all = await conn.listDomains();
    const prints: DiskPrint[] = [];
    let next = 0;
    const lane = async (): Promise<void> => {
      for (let d = all[next++]; d; d = all[next++]) {
        if (!d.active) {
          prints.push(printOf(d.name, undefined));
          continue;
        }
        try {
          prints.push(printOf(d.name, parseDomainXml(await conn.domainXml(d.name))));
        } catch (err) {
          log.debug('a domain went away during the sweep; its lifecycle event refreshes the list', { domain: d.name, err });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_LANES, all.length) }, lane));
    return prints;
  }

  async #jobInfo(conn: LibvirtConnection, domain: string, target: string): ReturnType<LibvirtConnection['blockJobInfo']> {
    if (this.#jobless === conn) return null;
    try {
      return await conn.blockJobInfo(domain, target);
    } catch (err) {
      if (libvirtCode(err) !== 'VIR_ERR_NO_SUPPORT') throw err;
      this.#jobless = conn;
      return null;
    }
  }

  async #sweep(): Promise<void> {
    const conn = this.#deps.connection();
    if (!conn || this.#reconciling === conn) return;
    const { jobs } = this.#deps;
    if (await this.#compare(conn)) await this.refresh();
    await this.#eachDisk(conn, async (domain, t) => {
      if (jobs.active(domain, t)) return;
      try {
        const info = await this.#jobInfo(conn, domain, t);
        if (info) jobs.observe(domain, t, info);
      } catch (err) {
        log.debug('a domain went away during the sweep; its lifecycle event refreshes the list', { domain, err });
      }
    });
  }
}

/** A domain's disks; one that does not run (or could not be read) has none to compare. */
function printOf(name: string, parsed: ParsedDomain | undefined): DiskPrint {
  return parsed ? diskPrint(parsed) : { name, print: '' };
}
