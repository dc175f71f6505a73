// Helpers for the engine tests (test/core/NN-*.test.ts): the core over the in-memory transport
// against real libvirtd + QEMU, with lab domains made by test/lab/harness.ts.
import assert from 'node:assert/strict';
import { after, before, type TestContext } from 'node:test';
import type { StrataClient } from '../../src/shared/bridge.ts';
import type { Events, Params } from '../../src/shared/contract.ts';
import { StrataError } from '../../src/shared/errors.ts';
import { isFinished, type ChainPreview, type Disk, type HostInfo, type Job, type Layer } from '../../src/shared/model.ts';
import { type LayerWrite } from '../../src/main/core/lab/images.ts';
import { findMissingWrites } from '../lab/image-checks.ts';
import { removeLabDomain } from '../../src/main/core/lab/lab.ts';
import { startTestCore, type TestCore } from './core-harness.ts';
import {
  createTestLab,
  diskChain,
  libvirt,
  suiteLabs,
  sweepStaleLabDomains,
  TEST_URI,
  useLabDomain,
  virsh,
  waitFor,
  type Connection,
  type TestLab,
  type TestLabOptions,
  type WaitOptions,
} from '../lab/harness.ts';

export const MiB = 1024 * 1024;

/** A 3-layer chain that every job finishes in well under a second when unthrottled. */
export const smallChain = { virtualSize: 64 * MiB, baseDataBytes: 2 * MiB, overlayDataBytes: MiB } as const satisfies TestLabOptions;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An engine suite's core, and the connection its lab domains are made through. */
export interface EngineSuite extends TestCore {
  readonly conn: Connection;
  /** A lab domain made through the suite's connection, removed when the test ends. */
  lab(ctx: TestContext, options?: TestLabOptions): Promise<TestLab>;
}

/**
 * The setup of a suite against real libvirtd + QEMU, called inside its `describe`: stale labs of
 * killed runs swept, one connection to make lab domains through and one core on TEST_URI, both
 * closed when the suite ends. Its members can be used once the suite's tests run. With
 * `labsTogether`, the suite's lab domains are destroyed together when it ends (see suiteLabs), for
 * suites whose tests look only at their own domains.
 */
export function engineSuite(setup: { labsTogether?: boolean } = {}): EngineSuite {
  const together = setup.labsTogether ? suiteLabs() : null;
  let conn: Connection | undefined;
  let core: TestCore | undefined;
  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
    core = await startTestCore({ uri: TEST_URI });
  });
  after(async () => {
    await core?.close();
    await conn?.close();
  });
  const made = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("the engine suite is set up in its describe's before hook: use it inside tests");
    return value;
  };
  return {
    get conn() {
      return made(conn);
    },
    get core() {
      return made(core).core;
    },
    get client() {
      return made(core).client;
    },
    get dataDir() {
      return made(core).dataDir;
    },
    get events() {
      return made(core).events;
    },
    close: () => made(core).close(),
    lab: (ctx, options = {}) => (together ? together.use(ctx, made(conn), options) : useLabDomain(ctx, made(conn), options)),
  };
}

/** The StrataError a call fails with (fails the test if it succeeds). */
export async function rejection(p: Promise<unknown>): Promise<StrataError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof StrataError, `expected a StrataError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

/** Every `job` event the core sent, in order (optionally of one domain). */
export function jobEvents(t: TestCore, domain?: string): Job[] {
  return t.events
    .filter((e): e is { event: 'job'; data: Events['job'] } => e.event === 'job')
    .map((e) => jobOf(e.data))
    .filter((j) => domain === undefined || j.domain === domain);
}

/** The job an event carries, as a reply or the history gives it: without the event's transition. */
function jobOf(event: Events['job']): Job {
  const { transition, ...job } = event;
  void transition;
  return job;
}

/** Every `host` event the core sent for one host, in order. */
export function hostEvents(t: TestCore, hostId: string): HostInfo[] {
  return t.events
    .filter((e): e is { event: 'host'; data: Events['host'] } => e.event === 'host')
    .map((e) => e.data)
    .filter((h) => h.id === hostId);
}

/** The first job event (already sent or still to come) that matches. */
export function waitForJob(t: TestCore, match: (j: Job) => boolean, options: WaitOptions = {}): Promise<Job> {
  return waitFor(() => jobEvents(t).find(match), { timeoutMs: 30_000, ...options });
}

/** The event that ends job `id` (completed, failed, cancelled or unknown). */
export function waitForEnd(t: TestCore, id: string, options: WaitOptions = {}): Promise<Job> {
  return waitForJob(t, (j) => j.id === id && isFinished(j), { what: `job ${id} to end`, ...options });
}

/**
 * The core heard libvirt's lifecycle event of `domain` (it sends `domain.changed` for it): from
 * then on the domain is among those it reads, with no time left to chance.
 */
export function waitForDomainChanged(t: TestCore, domain: string, options: WaitOptions = {}): Promise<true> {
  const heard = () => t.events.some((e) => e.event === 'domain.changed' && (e.data as Events['domain.changed']).domain === domain);
  return waitFor(() => heard() || undefined, { timeoutMs: 10_000, what: `the core to hear that ${domain} started`, ...options });
}

/**
 * That a ready job was left at ready, shown by a later event of the same job instead of a wait:
 * the engine decides what to do at ready when the ready event comes, so a pivot or an abort it
 * started would come before the event of a limit changed afterwards. Returns that later event.
 */
export async function assertLeftAtReady(t: TestCore, ref: { hostId: string; domain: string; disk: string }, jobId: string): Promise<Job> {
  const all = () => jobEvents(t).filter((j) => j.id === jobId);
  const readyAt = all().findIndex((j) => j.phase === 'ready');
  assert.ok(readyAt >= 0, `job ${jobId} was ready`);
  const limit = 64 * MiB + 4096;
  await t.client.call('job.setSpeed', { ...ref, bandwidthBytesPerSec: limit });
  const later = await waitForJob(t, (j) => j.id === jobId && j.bandwidthBytesPerSec === limit, { what: 'the event of the changed limit' });
  const since = all().slice(readyAt);
  const laterAt = since.findIndex((j) => j.bandwidthBytesPerSec === limit);
  assert.deepEqual(since.slice(0, laterAt + 1).map((j) => j.phase).filter((p) => p !== 'ready'), [], 'nothing moved the job on from ready');
  return later;
}

/**
 * Every event libvirt sent about `domain` before this call has reached the core: libvirt delivers
 * a connection's events in order, so once the core hears the lifecycle events of a pause and a
 * resume made now, an earlier event (a late block-job event, say) has come too.
 */
export async function libvirtEventsDelivered(t: TestCore, domain: string, uri = TEST_URI): Promise<void> {
  const from = t.events.length;
  await virsh(['suspend', domain], uri);
  await virsh(['resume', domain], uri);
  const heard = () => t.events.slice(from).filter((e) => e.event === 'domain.changed' && (e.data as Events['domain.changed']).domain === domain).length;
  await waitFor(() => heard() >= 2 || undefined, { timeoutMs: 10_000, what: `the lifecycle events of pausing and resuming ${domain}` });
}

/** Resolves once each domain's vda job has copied `bytes` more (virsh's `cur`) than when called. */
export async function copiedMore(domains: readonly string[], bytes: number, readCur: (domain: string) => Promise<number>): Promise<void> {
  const start = await Promise.all(domains.map(readCur));
  await waitFor(async () => (await Promise.all(domains.map(readCur))).every((cur, i) => cur - start[i]! >= bytes) || undefined, {
    timeoutMs: 30_000,
    intervalMs: 100,
    what: `${domains.join(', ')} to copy ${bytes} bytes more`,
  });
}

/** The image paths of a disk's chain as libvirt's live XML shows it now (virsh dumpxml). */
export async function liveChain(domain: string, target = 'vda', uri = TEST_URI): Promise<string[]> {
  return diskChain(await virsh(['dumpxml', domain], uri), target);
}

export const paths = (layers: readonly Pick<Layer, 'path'>[]): string[] => layers.map((l) => l.path);

/** A disk as `domain.get` reports it. */
export async function diskOf(client: StrataClient, hostId: string, domain: string, target = 'vda'): Promise<Disk> {
  const detail = await client.call('domain.get', { hostId, domain });
  const disk = detail.disks.find((d) => d.target === target);
  assert.ok(disk, `${domain} has no disk ${target}`);
  return disk;
}

/** libvirt's index of each layer of the disk, active layer first (all must have one). */
export async function layerIndexes(client: StrataClient, hostId: string, domain: string, target = 'vda'): Promise<number[]> {
  const disk = await diskOf(client, hostId, domain, target);
  return disk.chain.map((l) => {
    assert.ok(l.index !== null, `layer ${l.path} has no index`);
    return l.index;
  });
}

type StartParams = Omit<Params<'job.start'>, 'hostId' | 'domain' | 'disk' | 'operation'>;

/** `operation.preview`, then `job.start` of the same operation: resolves to both answers. */
export async function previewAndStart(
  client: StrataClient,
  ref: { hostId: string; domain: string; disk: string },
  operation: Params<'job.start'>['operation'],
  extra: StartParams = {},
): Promise<{ preview: ChainPreview; job: Job }> {
  const preview = await client.call('operation.preview', { ...ref, operation });
  const job = await client.call('job.start', { ...ref, operation, ...extra });
  return { preview, job };
}

/**
 * A lab domain that outlives a libvirtd restart: test labs are autodestroyed with the connection
 * that made them, and a daemon restart ends that connection (measured: the domain is destroyed),
 * so this one is not autodestroyed, and is removed through a fresh connection. A test process
 * killed before dispose() leaves it to sweepStaleLabDomains() (its name carries the pid).
 */
export async function createDurableLab(conn: Connection, options: TestLabOptions = {}): Promise<TestLab> {
  const lab = await createTestLab(conn, { ...options, autoDestroy: false });
  let disposed: Promise<void> | null = null;
  const dispose = (): Promise<void> => {
    disposed ??= (async () => {
      const fresh = await libvirt.open(TEST_URI);
      try {
        await removeLabDomain(fresh, { name: lab.name, dir: lab.dir });
      } finally {
        await fresh.close();
      }
    })();
    return disposed;
  };
  return { ...lab, dispose, [Symbol.asyncDispose]: dispose };
}

/**
 * A durable lab made through a connection of its own, closed at once (a connection does not
 * outlive a daemon restart, and the domain must not depend on it), removed when the test ends.
 */
export async function useDurableLab(ctx: TestContext, options: TestLabOptions): Promise<TestLab> {
  const conn = await libvirt.open(TEST_URI);
  try {
    const lab = await createDurableLab(conn, { tag: ctx.name, virtualSize: 64 * MiB, ...options });
    ctx.after(() => lab.dispose());
    return lab;
  } finally {
    await conn.close();
  }
}

/**
 * The writes of the lab's layers that `image` (read through its chain) does not hold, read after
 * stopping the domain: QEMU keeps qcow2 metadata in memory, so a live read of an image it writes
 * (`qemu-io -U`) can miss data that is there (measured: a partial pull's data shows only after
 * the domain stops). `virsh destroy --graceful` lets QEMU flush and close its images.
 */
export async function missingAfterStop(lab: Pick<TestLab, 'name' | 'chain'>, image: string): Promise<LayerWrite[]> {
  await virsh(['destroy', lab.name, '--graceful']);
  return findMissingWrites(image, lab.chain.writes);
}

/** Rates from virsh's `cur` over a window: bytes/s for each domain's vda job. */
export async function measureRates(domains: readonly string[], windowMs: number, readCur: (domain: string) => Promise<number>): Promise<number[]> {
  const start = await Promise.all(domains.map(async (d) => ({ at: Date.now(), cur: await readCur(d) })));
  await sleep(windowMs);
  const end = await Promise.all(domains.map(async (d) => ({ at: Date.now(), cur: await readCur(d) })));
  return domains.map((_, i) => ((end[i]!.cur - start[i]!.cur) * 1000) / (end[i]!.at - start[i]!.at));
}
