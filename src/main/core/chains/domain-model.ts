// A host's domains as last read: the listing, and each domain's parsed XML and state, so that
// domain.get serves a chain from memory instead of asking libvirt for the XML and parsing it again
// (on a host of 1,000 domains that is most of the time between the open and a full model).
//
// A reading is trusted while nothing says it changed:
// - every event that may change a domain (lifecycle, block job, a job's transition, Strata's own
//   domain.changed) forgets it, and the next reader reads it anew;
// - libvirt sends no event for some changes made elsewhere (an external snapshot, a disk attached),
//   so a reading is trusted for `trustMs` (the discovery interval) after it began or after a bulk
//   reading last found the domain's disks unchanged, and for as long as the discovery sweeps (it
//   does while someone watches) when the latest sweep found them unchanged;
// - a reconnection forgets everything.
// A reading that began before a change was seen is handed to its caller but not kept.
import type { DomainState } from '../../../shared/model.ts';
import type { RawDomain } from '../../libvirt/types.ts';
import type { ChainIndex } from './chain-index.ts';
import type { ParsedDomain } from './domain-xml.ts';

/** A domain as read: its XML's disks and chains, and its state. */
export interface KnownDomain {
  parsed: ParsedDomain;
  state: DomainState;
}

export interface DomainModelDeps {
  list(): Promise<RawDomain[]>;
  /** Reads one domain's XML anew, and its state unless the listing's is current (given). */
  read(name: string, state: DomainState | null): Promise<KnownDomain>;
  /** Told each domain's chains as they are read (the shared-layer index). */
  chains: ChainIndex;
  trustMs: number;
  now?: () => number;
}

/** One domain's disks as its live definition shows them: targets, and each chain's top and depth. */
export interface DiskPrint {
  name: string;
  /** The same text for the same disks and chains. */
  print: string;
}

/**
 * A domain's disks, from its parsed live XML, as the model compares them. A chain is told by its
 * top layer and depth: whatever changes a chain (a snapshot, a pull, a commit, a copy's pivot)
 * changes one of them, and a print of every layer cost a 1,000-domain host 30-70 ms and 5 MiB.
 */
export function diskPrint(parsed: ParsedDomain): DiskPrint {
  const parts = parsed.disks.map((disk) => {
    const top = disk.chain[0];
    return top ? `${disk.target}[${top.index ?? ''}]=${top.path}+${disk.chain.length}` : disk.target;
  });
  return { name: parsed.name, print: parts.join('\n') };
}

interface Entry {
  known: KnownDomain;
  /** When the reading began, or when a bulk reading that began later found it unchanged. */
  trustedSince: number;
  readAt: number;
}

interface Pending<T> {
  generation: number;
  promise: Promise<T>;
}

export class DomainModel {
  readonly #deps: DomainModelDeps;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #pending = new Map<string, Pending<KnownDomain>>();
  /** Per domain, the generation of the last change seen; a reading from before it is not kept. */
  readonly #changed = new Map<string, number>();
  /**
   * Per domain, its disks as the last sweep saw them, and when the first of the bulk readings that
   * have seen them so, one after another, began.
   */
  readonly #prints = new Map<string, { print: string; since: number }>();
  #generation = 0;
  #cleared = 0;
  /** When the last bulk reading began. */
  #bulkAt = Number.NEGATIVE_INFINITY;
  /** The discovery sweeps: every reading its latest bulk reading confirmed is trusted until the next. */
  #sweeping = false;
  /** The reading of every domain after a connection, under way: readers wait for it rather than read twice. */
  #settling: Promise<void> | null = null;
  /** Dropped on any change seen, so while it is kept its states are current. */
  #listing: { domains: RawDomain[]; states: Map<string, DomainState>; at: number } | null = null;
  #pendingListing: Pending<RawDomain[]> | null = null;
  /** The domains that have named snapshots, as one listing found them (null: the listing failed). */
  #snapshotted: (Pending<ReadonlySet<string> | null> & { at: number }) | null = null;

  constructor(deps: DomainModelDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? (() => performance.now());
  }

  /** Something may have changed `name` (or the list of domains): the next reader reads it anew. */
  invalidate(name: string): void {
    this.#changed.set(name, ++this.#generation);
    this.#entries.delete(name);
    this.#pending.delete(name);
    this.#listing = null;
    this.#pendingListing = null;
  }

  /** A new connection: nothing read before it is kept. */
  clear(): void {
    this.#cleared = ++this.#generation;
    this.#entries.clear();
    this.#pending.clear();
    this.#changed.clear();
    this.#prints.clear();
    this.#bulkAt = Number.NEGATIVE_INFINITY;
    this.#sweeping = false;
    this.#settling = null;
    this.#listing = null;
    this.#pendingListing = null;
  }

  /**
   * Whether `name` may have named snapshots: false only when a listing of the domains that have
   * some (`read`, one call for the host), made since the last change seen and within the trust
   * interval, leaves it out. So a domain view asks libvirt for the snapshots of those domains
   * alone. No sweep extends that listing: no bulk reading shows snapshot metadata, and another
   * client can change it without touching a chain.
   */
  async maySnapshot(name: string, read: () => Promise<ReadonlySet<string>>): Promise<boolean> {
    const names = await this.snapshotted(read);
    return names === null || names.has(name);
  }

  /** The domains that have named snapshots, listed anew (`read`) unless a listing is still trusted; null if it failed. */
  snapshotted(read: () => Promise<ReadonlySet<string>>): Promise<ReadonlySet<string> | null> {
    let held = this.#snapshotted;
    if (!held || held.generation !== this.#generation || this.#now() - held.at > this.#deps.trustMs) {
      held = { generation: this.#generation, at: this.#now(), promise: read().catch(() => null) };
      this.#snapshotted = held;
    }
    return held.promise;
  }

  /** The model's clock: a bulk reading is stamped with it when it begins. */
  now(): number {
    return this.#now();
  }

  #generationOf(name: string): number {
    return Math.max(this.#cleared, this.#changed.get(name) ?? 0);
  }

  #trusted(since: number): boolean {
    return (this.#sweeping && since >= this.#bulkAt) || this.#now() - since <= this.#deps.trustMs;
  }

  /** The discovery reads every domain after a connection: `listing` and `known` wait for it. */
  settling(reading: Promise<unknown>): void {
    const settled: Promise<void> = reading.then(
      () => undefined,
      () => undefined,
    );
    this.#settling = settled;
    void settled.then(() => {
      if (this.#settling === settled) this.#settling = null;
    });
  }

  /** Whether the discovery sweeps, so that a reading is confirmed or forgotten within its interval. */
  sweeping(on: boolean): void {
    this.#sweeping = on;
  }

  /** The domains, from the last listing while it is trusted, else listed anew. */
  listing(): Promise<RawDomain[]> {
    if (this.#settling) return this.#settling.then(() => this.listing());
    if (this.#listing && this.#trusted(this.#listing.at)) return Promise.resolve(this.#listing.domains);
    if (this.#pendingListing?.generation === this.#generation) return this.#pendingListing.promise;
    return this.list();
  }

  /** Lists the domains anew, and forgets those gone. */
  list(): Promise<RawDomain[]> {
    const generation = this.#generation;
    const at = this.#now();
    const promise = this.#deps.list().then((domains) => {
      if (this.#generation === generation) {
        this.#listing = { domains, states: new Map(domains.map((d) => [d.name, d.state])), at };
        const names = new Set(domains.map((d) => d.name));
        this.#retain(names);
      }
      return domains;
    });
    const pending = { generation, promise };
    this.#pendingListing = pending;
    const done = (): void => {
      if (this.#pendingListing === pending) this.#pendingListing = null;
    };
    promise.then(done, done);
    return promise;
  }

  #retain(names: ReadonlySet<string>): void {
    for (const name of [...this.#entries.keys()]) if (!names.has(name)) this.#entries.delete(name);
    for (const name of [...this.#prints.keys()]) if (!names.has(name)) this.#prints.delete(name);
    for (const name of [...this.#changed.keys()]) if (!names.has(name) && !this.#pending.has(name)) this.#changed.delete(name);
    this.#deps.chains.retain(names);
  }

  /** The domain from the model while its reading is trusted, else read anew (joining a read under way). */
  known(name: string): Promise<KnownDomain> {
    const entry = this.#entries.get(name);
    if (!entry && this.#settling) return this.#settling.then(() => this.known(name));
    if (entry && this.#trusted(entry.trustedSince)) return Promise.resolve(entry.known);
    const pending = this.#pending.get(name);
    if (pending && pending.generation === this.#generationOf(name)) return pending.promise;
    return this.read(name);
  }

  /** Reads the domain anew (what an operation about to change it needs), and keeps the reading. */
  read(name: string): Promise<KnownDomain> {
    const generation = this.#generationOf(name);
    const at = this.#now();
    const promise = this.#deps.read(name, this.#listing?.states.get(name) ?? null).then((known) => {
      const kept = this.#entries.get(name);
      if (this.#generationOf(name) === generation && !(kept && kept.readAt > at)) {
        this.#entries.set(name, { known, trustedSince: at, readAt: at });
        this.#deps.chains.set(name, known.parsed.disks);
      }
      return known;
    });
    const pending = { generation, promise };
    this.#pending.set(name, pending);
    const done = (): void => {
      if (this.#pending.get(name) === pending) this.#pending.delete(name);
    };
    promise.then(done, done);
    return promise;
  }

  /**
   * A bulk reading of every domain's disks from their live definitions (the discovery's sweeps,
   * and at connect the readings of every domain), begun at `at`. A domain whose disks differ from the
   * previous reading's is forgotten, and named in the result when a reading of it was held: it
   * changed without an event. One found unchanged stays trusted if its reading began after a bulk
   * reading that saw the same disks as every one since (a change before that would not show; a
   * reading still under way when a sweep began is confirmed by the next); so does the listing,
   * when the same domains are there.
   */
  sweep(prints: readonly DiskPrint[] | null, at: number): string[] {
    if (!prints) {
      // The bulk reading failed: nothing is confirmed, and what the last one confirmed is not either.
      this.#bulkAt = Number.POSITIVE_INFINITY;
      return [];
    }
    const changed: string[] = [];
    for (const p of prints) {
      const before = this.#prints.get(p.name);
      this.#prints.set(p.name, { print: p.print, since: before?.print === p.print ? before.since : at });
      if (!before) continue;
      if (before.print !== p.print) {
        if (this.#entries.has(p.name)) changed.push(p.name);
        this.invalidate(p.name);
        continue;
      }
      const entry = this.#entries.get(p.name);
      if (entry && entry.trustedSince >= before.since) entry.trustedSince = Math.max(entry.trustedSince, at);
    }
    const listing = this.#listing;
    if (listing && listing.at >= this.#bulkAt && listing.states.size === prints.length && prints.every((p) => listing.states.has(p.name))) {
      listing.at = Math.max(listing.at, at);
    }
    this.#bulkAt = at;
    return changed;
  }
}
