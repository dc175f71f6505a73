// Test harness for tests against a real libvirtd + QEMU.
//
// How cleanup works (three layers, so a failing or killed test leaves nothing for long):
// 1. `useLabDomain(t, conn)` registers its cleanup with node:test's `t.after`, which runs when
//    the test ends, passed or failed. Outside a test (a `before` hook, a script) use
//    `createTestLab()` and call `dispose()` (or `await using lab = …`: a TestLab is
//    AsyncDisposable). `dispose()` destroys the domain, ignoring "no such domain" and "not
//    running", and removes the lab's images directory.
// 2. Test domains are started with VIR_DOMAIN_START_AUTODESTROY, so libvirtd destroys them as soon
//    as the connection that created them closes, including when the test process dies.
// 3. `sweepStaleLabDomains()`, run at the start of every test file, destroys `strata-test-*`
//    domains and removes lab directories whose owning process is gone.
//
// Names are `strata-test-<pid>-<run>-<n>-<tag>`: <pid> is the test process and <run> a random
// token of that process, so a later process that happens to get the same pid still sees the old
// leftovers as stale. Images live under one root, `${os.tmpdir()}/strata-lab/<name>/`: /tmp is
// searchable by everyone, and each lab directory is made 0711 (see makeTraversable) because
// Debian's libvirtd runs QEMU as libvirt-qemu.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdir, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, type TestContext } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import type * as Native from '../../native/index.d.ts';
import { createLabDomain, removeLabDir, removeLabDomain, type LabDomain, type LabDomainOptions } from '../../src/main/core/lab/lab.ts';
import { LabError, makeTraversable, runTool } from '../../src/main/core/lab/images.ts';
import { sessionQemuUser } from '../../src/main/core/hosts/session-user.ts';

export type NativeModule = typeof Native;
export type Connection = Native.Connection;
export type Domain = Native.Domain;
/** blockJobInfo's answer when the disk has a job. */
export type ActiveBlockJobInfo = Exclude<Native.BlockJobInfo, Record<string, never>>;

/** True when blockJobInfo found a job (it resolves to {} when there is none). */
export function hasJob(info: Native.BlockJobInfo): info is ActiveBlockJobInfo {
  return 'type' in info;
}

/** The addon, loaded from the repository's native/ folder. */
export const libvirt: NativeModule = createRequire(import.meta.url)('../../native/index.js') as NativeModule;

/** The libvirtd the tests run against: $STRATA_TEST_URI, or qemu:///system. */
export const TEST_URI = process.env['STRATA_TEST_URI'] || 'qemu:///system';
export const LAB_ROOT = join(tmpdir(), 'strata-lab');
export const TEST_PREFIX = 'strata-test-';

const RUN_TOKEN = randomBytes(3).toString('hex');
const NAME_RE = /^strata-test-(\d+)-([0-9a-f]+)-/;
let counter = 0;

/** A unique test domain name: strata-test-<pid>-<run>-<n>-<tag>. */
export function uniqueLabName(tag = 'lab'): string {
  const cleanTag = tag.replace(/[^a-zA-Z0-9_-]/g, '-').slice(0, 40);
  counter += 1;
  return `${TEST_PREFIX}${process.pid}-${RUN_TOKEN}-${counter}-${cleanTag}`;
}

function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when a `strata-test-*` name belongs to a process that no longer runs. */
export function isStaleLabName(name: string): boolean {
  const m = NAME_RE.exec(name);
  if (!m) return false;
  const pid = Number(m[1]);
  if (pid === process.pid) return m[2] !== RUN_TOKEN;
  return !isPidAlive(pid);
}

function libvirtCode(err: unknown): string | undefined {
  return err instanceof libvirt.LibvirtError ? err.code : undefined;
}

/**
 * Destroys `strata-test-*` domains whose process is gone and removes their lab directories
 * (and lab directories left without a domain). Domains of live test processes are left alone,
 * so test files running in parallel do not disturb each other.
 */
export async function sweepStaleLabDomains(uri: string = TEST_URI): Promise<{ domains: string[]; dirs: string[] }> {
  const swept = { domains: [] as string[], dirs: [] as string[] };
  const conn = await libvirt.open(uri);
  try {
    for (const dom of await conn.listAllDomains()) {
      const name = dom.name();
      if (!name.startsWith(TEST_PREFIX) || !isStaleLabName(name)) continue;
      try {
        await dom.destroy();
        swept.domains.push(name);
      } catch (err) {
        const code = libvirtCode(err);
        if (code !== 'VIR_ERR_NO_DOMAIN' && code !== 'VIR_ERR_OPERATION_INVALID') throw err;
      }
    }
  } finally {
    await conn.close();
  }
  let entries: string[] = [];
  try {
    entries = await readdir(LAB_ROOT);
  } catch {
    return swept;
  }
  for (const entry of entries) {
    if (!entry.startsWith(TEST_PREFIX) || !isStaleLabName(entry)) continue;
    try {
      await removeLabDir(join(LAB_ROOT, entry));
      swept.dirs.push(entry);
    } catch (err) {
      // Not a folder the lab made (no marker): left alone, and named, rather than failing every
      // test file that sweeps before it starts.
      if (!(err instanceof LabError) || err.code !== 'NOT_A_LAB_DIR') throw err;
      console.warn(`strata lab: left ${join(LAB_ROOT, entry)} alone: ${err.message}`);
    }
  }
  return swept;
}

export interface TestLab extends LabDomain, AsyncDisposable {
  conn: Connection;
  /** Destroys the domain and removes its images; safe to call twice. */
  dispose(): Promise<void>;
}

export type TestLabOptions = Partial<Omit<LabDomainOptions, 'name' | 'dir'>> & { tag?: string };

let warnedSlowStart = false;

/** A 3-layer chain with real data and a transient, autodestroyed domain on it. Call dispose(). */
export async function createTestLab(conn: Connection, options: TestLabOptions = {}): Promise<TestLab> {
  const { tag, ...labOptions } = options;
  const name = uniqueLabName(tag);
  await mkdir(LAB_ROOT, { recursive: true });
  // On a session instance QEMU runs as this user, who may keep the images in a private folder.
  const qemuUser = sessionQemuUser(TEST_URI);
  await makeTraversable(LAB_ROOT, qemuUser);
  const started = Date.now();
  const lab = await createLabDomain(conn, { autoDestroy: true, qemuUser, ...labOptions, name, dir: join(LAB_ROOT, name) });
  const took = Date.now() - started;
  if (took > 10_000 && !warnedSlowStart) {
    warnedSlowStart = true;
    // Measured here: when /dev/kvm exists but libvirt-qemu may not open it, libvirt 9.0 finds its
    // cached QEMU capabilities "outdated" (KVM was usable when probing, not now) and re-probes
    // QEMU about ten times per domain start: ~40 s instead of ~1 s.
    console.warn(
      `strata lab: starting ${name} took ${(took / 1000).toFixed(1)} s. If /dev/kvm is not readable and ` +
        'writable by libvirt-qemu, libvirtd re-probes QEMU on every start; fix: ' +
        'groupadd -r kvm; chgrp kvm /dev/kvm; chmod 660 /dev/kvm; usermod -aG kvm libvirt-qemu',
    );
  }
  let disposed: Promise<void> | null = null;
  const dispose = (): Promise<void> => {
    // Once the creating connection is closed, autodestroy has already destroyed the domain:
    // only the images are left to remove.
    disposed ??= conn.isClosed() ? removeLabDomain(null, { name: lab.name, dir: lab.dir }) : removeLabDomain(conn, lab);
    return disposed;
  };
  return { ...lab, conn, dispose, [Symbol.asyncDispose]: dispose };
}

const labsOfTest = new WeakMap<TestContext, TestLab[]>();

/**
 * createTestLab, with its cleanup registered on the test (runs even when the test fails). A test's
 * labs go at once, in one hook: libvirt's destroy returns only once QEMU's exit has been reaped,
 * which a machine whose init reaps orphans late (measured here: 1.2-2 s) makes each destroy wait.
 */
export async function useLabDomain(t: TestContext, conn: Connection, options: TestLabOptions = {}): Promise<TestLab> {
  const lab = await createTestLab(conn, { tag: t.name, ...options });
  let labs = labsOfTest.get(t);
  if (labs === undefined) {
    const ofThisTest: TestLab[] = [];
    labs = ofThisTest;
    labsOfTest.set(t, ofThisTest);
    t.after(async () => {
      await Promise.all(ofThisTest.splice(0).map((l) => l.dispose()));
    });
  }
  labs.push(lab);
  return lab;
}

/**
 * Lab domains for the tests of one suite (call it inside the `describe`, before the hook that
 * closes the connection): each test gets a domain of its own, as with useLabDomain, but they are
 * all destroyed together when the suite ends, in the time one destroy takes. A test's block jobs
 * are cancelled when it ends, so a domain kept idle meanwhile runs nothing (about 2 % of a core).
 */
export function suiteLabs(): { use(t: TestContext, conn: Connection, options?: TestLabOptions): Promise<TestLab> } {
  const made: TestLab[] = [];
  after(async () => {
    await Promise.all(made.splice(0).map((l) => l.dispose()));
  });
  return {
    async use(t, conn, options = {}) {
      const lab = await createTestLab(conn, { tag: t.name, ...options });
      made.push(lab);
      t.after(async () => {
        // No job (or a domain the test stopped): nothing to cancel.
        if (!conn.isClosed()) await lab.domain.blockJobAbort('vda', 0).catch(() => undefined);
      });
      return lab;
    },
  };
}

/** A connection to `uri`, closed when the test ends. */
export async function useConnection(t: TestContext, uri: string = TEST_URI): Promise<Connection> {
  const conn = await libvirt.open(uri);
  t.after(() => conn.close());
  return conn;
}

/** Runs virsh against `uri` (default TEST_URI) with an argument list, no shell; resolves to stdout. */
export function virsh(args: readonly string[], uri: string = TEST_URI): Promise<string> {
  return runTool('virsh', ['-c', uri, ...args], 30_000);
}

export { waitFor, type WaitOptions } from './wait.ts';

/** Records the events of one registration; waitFor looks at past and future events. */
export class EventRecorder<K extends Native.BoundEventID> {
  readonly events: Native.DomainEventMap[K][] = [];
  #waiters = new Set<{ match: (e: Native.DomainEventMap[K]) => boolean; resolve: (e: Native.DomainEventMap[K]) => void }>();
  #id: number | null = null;

  private constructor(
    readonly conn: Connection,
    readonly eventID: K,
  ) {}

  static async register<K extends Native.BoundEventID>(conn: Connection, dom: Domain | null, eventID: K): Promise<EventRecorder<K>> {
    const recorder = new EventRecorder(conn, eventID);
    recorder.#id = await conn.domainEventRegisterAny(dom, eventID, (event) => recorder.#push(event));
    return recorder;
  }

  get callbackID(): number | null {
    return this.#id;
  }

  #push(event: Native.DomainEventMap[K]): void {
    this.events.push(event);
    for (const w of this.#waiters) {
      if (w.match(event)) {
        this.#waiters.delete(w);
        w.resolve(event);
      }
    }
  }

  /** The first event (already seen or still to come) that matches. */
  waitFor(match: (e: Native.DomainEventMap[K]) => boolean, timeoutMs = 15_000, what = 'an event'): Promise<Native.DomainEventMap[K]> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (e: Native.DomainEventMap[K]) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.events)}`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Deregisters (nothing to do if the connection is closed: close() deregistered it). */
  async dispose(): Promise<void> {
    const id = this.#id;
    this.#id = null;
    if (id !== null && !this.conn.isClosed()) await this.conn.domainEventDeregisterAny(id);
  }
}

const xmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  isArray: (name) => name === 'disk',
});

type XmlNode = Record<string, unknown>;

function asNode(v: unknown): XmlNode | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as XmlNode) : null;
}

export interface LiveLayer {
  file: string;
  /** The `index` attribute of the layer's <source> (active layer) or <backingStore> element. */
  index: number;
}

/**
 * A disk's backing chain in a domain's live XML, active layer first: the <source file> of the
 * disk, then of each nested <backingStore>, until an empty one ends it. Read here independently
 * of the app's own parser, so tests check it against libvirt's words, not against itself.
 */
export function diskLayers(domainXml: string, target: string): LiveLayer[] {
  const root = asNode(xmlParser.parse(domainXml));
  const devices = asNode(asNode(root?.['domain'])?.['devices']);
  const disks = Array.isArray(devices?.['disk']) ? (devices['disk'] as unknown[]) : [];
  const disk = disks.map(asNode).find((d) => asNode(d?.['target'])?.['@dev'] === target);
  if (!disk) throw new Error(`no disk '${target}' in the domain XML`);
  const layers: LiveLayer[] = [];
  for (let n: XmlNode | null = disk; n !== null; n = asNode(n['backingStore'])) {
    const source = asNode(n['source']);
    const file = source?.['@file'];
    if (typeof file !== 'string') break;
    // The active layer's index sits on <source>, a backing layer's on its <backingStore>.
    layers.push({ file, index: Number(n === disk ? source?.['@index'] : n['@index']) });
  }
  return layers;
}

/** The image files of a disk's backing chain in a domain's live XML, active layer first. */
export function diskChain(domainXml: string, target: string): string[] {
  return diskLayers(domainXml, target).map((l) => l.file);
}

/** `virsh blockjob DOM DISK --info --raw --bytes`, parsed: {} when the disk has no job. */
export async function virshBlockJobInfo(domain: string, disk: string): Promise<Record<string, string>> {
  const out = await virsh(['blockjob', domain, disk, '--info', '--raw', '--bytes']);
  const info: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^\s*([a-z_]+)=(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) info[m[1]] = m[2].trim();
  }
  return info;
}
