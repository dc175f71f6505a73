// Stress run of the libvirt addon: thousands of calls, event registrations, misuse and dropped
// wrappers, then a real lab domain with a throttled pull hammered with blockJobInfo and
// blockJobSetSpeed. Meant to run under AddressSanitizer/LeakSanitizer through native/stress/run.sh,
// but runs on the ordinary build too:
//
//   node --import tsx --expose-gc native/stress/stress.mts
//
// Environment:
//   STRATA_NATIVE_ADDON  path of a .node to load instead of native/index.js (run.sh passes the
//                        sanitized build); loaded directly, with its error class set like index.js.
//   STRATA_STRESS_URI    the libvirtd to use (default qemu:///system).
//   STRATA_STRESS_SCALE  multiplies the iteration counts (default 1; 0.1 for a quick try).
//   STRATA_STRESS_ONLY, STRATA_STRESS_SKIP  comma-separated phase names to run only / to skip
//                        (an unknown name lists them), to narrow down a sanitizer report.
//
// Phases (scale 1): open-test / open-qemu (open/close × 1000 / × 300, each with a list, a lookup
// hit and miss), calls-test / calls-qemu (2000 calls on one connection, then 8 in flight),
// events-qemu / events-test (register/deregister × 300 over every bound event ID, registrations
// left for close()), closecb-qemu / closecb-test (close callbacks × 200, racing, left for close()),
// delivered (lifecycle events really delivered, fan-out, a throwing listener), misuse (calls on
// closed connections and their domains, double close, wrong arguments, constructors and
// receivers, close() racing calls in flight), dropped (wrappers dropped and collected, sockets
// closed by finalizers), pull (a lab domain's pull at 1 MiB/s: 2000 blockJobInfo +
// blockJobSetSpeed one at a time and 2000 with 8 in flight, then abort and the CANCELED event),
// dropped-listener (a child process: connections collected with a listener registered).
//
// Prints a table of counts and exits 0 only when every call did what was expected.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type * as Native from '../index.d.ts';
import { createLabDomain, removeLabDomain, type LabDomain } from '../../src/main/core/lab/lab.ts';
import { makeTraversable, MiB } from '../../src/main/core/lab/images.ts';

type NativeModule = typeof Native;
type Connection = Native.Connection;
type Domain = Native.Domain;

/** What the .node itself exports (native/index.js wraps it). */
interface RawBinding {
  setErrorClass(errorClass: new (message: string, details: object) => Error): void;
  open: NativeModule['open'];
  openReadOnly: NativeModule['openReadOnly'];
  Connection: unknown;
  Domain: unknown;
  DomainSnapshot: unknown;
  constants: Record<string, number | string>;
  enums: Record<string, Record<string, number>>;
}

const require = createRequire(import.meta.url);

function loadAddon(): NativeModule {
  const path = process.env['STRATA_NATIVE_ADDON'];
  if (!path) return require('../index.js') as NativeModule;
  const binding = require(resolve(path)) as RawBinding;
  // The same class native/index.js gives its errors.
  class LibvirtError extends Error {
    constructor(message: string, details: object) {
      super(message);
      this.name = 'LibvirtError';
      Object.assign(this, details);
    }
  }
  binding.setErrorClass(LibvirtError);
  const module = {
    open: binding.open,
    openReadOnly: binding.openReadOnly,
    Connection: binding.Connection,
    Domain: binding.Domain,
    DomainSnapshot: binding.DomainSnapshot,
    LibvirtError,
    constants: binding.constants,
    enums: binding.enums,
    ...binding.constants,
  };
  return module as unknown as NativeModule;
}

// run.sh preloads libasan into this process only: the tools the lab runs (qemu-img, qemu-io) are
// not ours, and LeakSanitizer in them would fail them at exit. Kept for the child process that
// loads the addon again (droppedListener).
const PRELOAD = process.env['LD_PRELOAD'];
delete process.env['LD_PRELOAD'];

const lv = loadAddon();
const URI = process.env['STRATA_STRESS_URI'] || 'qemu:///system';
const SCALE = Number(process.env['STRATA_STRESS_SCALE'] || '1');
if (!(SCALE > 0)) throw new Error(`STRATA_STRESS_SCALE must be a positive number, not ${process.env['STRATA_STRESS_SCALE']}`);
const phaseList = (name: string): string[] => (process.env[name] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const ONLY = phaseList('STRATA_STRESS_ONLY');
const SKIP = phaseList('STRATA_STRESS_SKIP');
const n = (count: number): number => Math.max(1, Math.round(count * SCALE));

const gc = globalThis.gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

// ---------------------------------------------------------------------------------------------
// Bookkeeping: every expectation met counts under a name; every miss is kept and printed.

const counts = new Map<string, number>();
const failures: string[] = [];
let totalCalls = 0;

function ok(what: string, count = 1): void {
  counts.set(what, (counts.get(what) ?? 0) + count);
}
function fail(what: string, detail: string): void {
  counts.set(`${what} FAILED`, (counts.get(`${what} FAILED`) ?? 0) + 1);
  if (failures.length < 50) failures.push(`${what}: ${detail}`);
}

function describe(err: unknown): string {
  if (err instanceof lv.LibvirtError) return `LibvirtError ${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** Awaits a call that must succeed; `check` may refine what success means. */
async function expectOk<T>(what: string, call: () => Promise<T>, check?: (value: T) => string | null): Promise<T | undefined> {
  totalCalls++;
  try {
    const value = await call();
    const problem = check?.(value) ?? null;
    if (problem === null) ok(what);
    else fail(what, problem);
    return value;
  } catch (err) {
    fail(what, describe(err));
    return undefined;
  }
}

/** A call that must reject with a LibvirtError of one of `codes`. */
async function expectReject(what: string, call: () => Promise<unknown>, codes: readonly string[]): Promise<void> {
  totalCalls++;
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (err) {
    fail(what, `threw synchronously instead of rejecting: ${describe(err)}`);
    return;
  }
  try {
    await promise;
    fail(what, 'resolved, expected a rejection');
  } catch (err) {
    if (err instanceof lv.LibvirtError && codes.includes(err.code)) ok(what);
    else fail(what, `expected LibvirtError ${codes.join('|')}, got ${describe(err)}`);
  }
}

type ErrorClass = typeof TypeError | typeof RangeError | typeof Error;

/** Calls `target[method](...args)` bypassing the types; it must throw `type` synchronously. */
function expectThrow(what: string, target: object, method: string, args: unknown[], type: ErrorClass): void {
  totalCalls++;
  const fn: unknown = Reflect.get(target, method);
  if (typeof fn !== 'function') {
    fail(what, `${method} is not a method`);
    return;
  }
  let result: unknown;
  try {
    result = Reflect.apply(fn, target, args);
  } catch (err) {
    if (err instanceof type && !(err instanceof lv.LibvirtError && type !== Error)) ok(what);
    else fail(what, `${method}(${args.map(String).join(', ')}) threw ${describe(err)}, expected ${type.name}`);
    return;
  }
  if (result instanceof Promise) result.catch(() => undefined);
  fail(what, `${method}(${args.map(String).join(', ')}) did not throw`);
}

/** Runs `fn(i)` for i in [0, total) with at most `width` calls in flight. */
async function inFlight(total: number, width: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, total) }, worker));
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Full collections, with turns of the event loop between them so finalizers and their immediates run. */
async function collect(rounds = 4): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    gc?.();
    await tick();
    await sleep(10);
  }
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

const MISS = `strata-stress-no-such-domain-${randomBytes(4).toString('hex')}`;
const GONE = ['VIR_ERR_NO_DOMAIN'];

function phase(title: string): () => void {
  const started = Date.now();
  const callsBefore = totalCalls;
  process.stdout.write(`-- ${title} … `);
  return () => process.stdout.write(`${totalCalls - callsBefore} calls, ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

// ---------------------------------------------------------------------------------------------
// Phases.

/** Open/close cycles, each with a few calls on the fresh connection. */
async function openCloseCycles(uri: string, cycles: number, knownDomain: string): Promise<void> {
  const done = phase(`open/close × ${cycles} on ${uri}`);
  for (let i = 0; i < cycles; i++) {
    const conn = await expectOk(`open ${uri}`, () => (i % 5 === 4 ? lv.openReadOnly(uri) : lv.open(uri)));
    if (!conn) continue;
    await expectOk(`listAllDomains ${uri}`, () => conn.listAllDomains(), (l) => (l.some((d) => d.name() === knownDomain) ? null : `no ${knownDomain}`));
    await expectOk(`lookupByName hit ${uri}`, () => conn.lookupByName(knownDomain), (d) => (d.name() === knownDomain ? null : d.name()));
    await expectReject(`lookupByName miss ${uri}`, () => conn.lookupByName(MISS), GONE);
    await expectOk(`close ${uri}`, () => conn.close(), (v) => (v === 0 ? null : `close gave ${v}`));
  }
  done();
}

/** Many calls on one connection, sequential and 8 in flight. */
async function callsOnOneConnection(conn: Connection, label: string, known: string, jobDisk: string | null): Promise<void> {
  const done = phase(`calls on one ${label} connection`);
  const dom = await conn.lookupByName(known);
  const total = n(1000);
  await inFlight(total, 1, async (i) => {
    switch (i % 6) {
      case 0:
        await expectOk(`listAllDomains ${label}`, () => conn.listAllDomains());
        break;
      case 1:
        await expectOk(`lookupByName hit ${label}`, () => conn.lookupByName(known));
        break;
      case 2:
        await expectReject(`lookupByName miss ${label}`, () => conn.lookupByName(MISS), GONE);
        break;
      case 3:
        await expectOk(`XMLDesc ${label}`, () => dom.XMLDesc(), (x) => (x.includes(`<name>${known}</name>`) ? null : 'XML without the name'));
        break;
      case 4:
        if (jobDisk) {
          await expectOk(`blockJobInfo (no job) ${label}`, () => dom.blockJobInfo(jobDisk, lv.VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES), (r) =>
            Object.keys(r).length === 0 ? null : `a job: ${JSON.stringify(r)}`,
          );
        } else {
          // The test driver has no block jobs: the error path.
          await expectReject(`blockJobInfo (unsupported) ${label}`, () => dom.blockJobInfo('vda'), ['VIR_ERR_NO_SUPPORT', 'VIR_ERR_INVALID_ARG', 'VIR_ERR_OPERATION_INVALID']);
        }
        break;
      default:
        await expectOk(
          `getAllDomainStats ${label}`,
          () => conn.getAllDomainStats(lv.VIR_DOMAIN_STATS_STATE | lv.VIR_DOMAIN_STATS_BLOCK, lv.VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING),
          (r) => (r.some(([d]) => d.name() === known) ? null : `no ${known} in the stats`),
        );
    }
  });
  // The same mix with 8 calls in flight on the one connection.
  await inFlight(total, 8, async (i) => {
    if (i % 3 === 0) await expectOk(`lookupByName hit ×8 ${label}`, () => conn.lookupByName(known));
    else if (i % 3 === 1) await expectReject(`lookupByName miss ×8 ${label}`, () => conn.lookupByName(MISS), GONE);
    else await expectOk(`XMLDesc ×8 ${label}`, () => dom.XMLDesc());
  });
  done();
}

/** Register/deregister cycles for every bound event ID, for all domains and for one. */
async function eventCycles(conn: Connection, label: string, dom: Domain): Promise<void> {
  const ids = [0, 8, 9, 15, 16, 21, 24] as const;
  const cycles = n(300);
  const done = phase(`event register/deregister × ${cycles} on ${label}`);
  for (let i = 0; i < cycles; i++) {
    const eventID = ids[i % ids.length] ?? 0;
    const target = i % 2 === 0 ? null : dom;
    const id = await expectOk(`domainEventRegisterAny ${label}`, () => conn.domainEventRegisterAny(target, eventID, () => undefined));
    if (id === undefined) continue;
    await expectOk(`domainEventDeregisterAny ${label}`, () => conn.domainEventDeregisterAny(id), (v) => (v === 0 ? null : `gave ${v}`));
    // A second deregistration of the same ID is libvirt's error path.
    if (i % 10 === 0) await expectReject(`domainEventDeregisterAny twice ${label}`, () => conn.domainEventDeregisterAny(id), ['VIR_ERR_INVALID_ARG']);
  }
  // Registrations left for close() to remove, and registrations made 8 at a time.
  for (let i = 0; i < n(20); i++) {
    const c = await lv.open(label === 'test' ? 'test:///default' : URI);
    const d = await c.lookupByName(dom.name());
    await inFlight(8, 8, (k) => expectOk(`register, left for close ${label}`, () => c.domainEventRegisterAny(k % 2 ? d : null, ids[k % ids.length] ?? 0, () => undefined)));
    await expectOk(`close with registrations ${label}`, () => c.close());
  }
  done();
}

/** Close callbacks registered and unregistered, and left for close(). */
async function closeCallbackCycles(uri: string, label: string): Promise<void> {
  const cycles = n(200);
  const done = phase(`close callback register/unregister × ${cycles} on ${label}`);
  const conn = await lv.open(uri);
  const ALREADY = ['VIR_ERR_OPERATION_INVALID'];
  for (let i = 0; i < cycles; i++) {
    await expectOk(`registerCloseCallback ${label}`, () => conn.registerCloseCallback(() => undefined));
    if (i % 20 === 0) {
      await expectReject(`registerCloseCallback twice ${label}`, () => conn.registerCloseCallback(() => undefined), ALREADY);
    }
    await expectOk(`unregisterCloseCallback ${label}`, () => conn.unregisterCloseCallback(), (v) => (v ? null : 'resolved false'));
    if (i % 20 === 0) {
      await expectOk(`unregisterCloseCallback twice ${label}`, () => conn.unregisterCloseCallback(), (v) => (v ? 'resolved true' : null));
    }
  }
  // Unregistered while the registration is still in flight: once both settled, no callback is
  // left, so a new registration must succeed.
  for (let i = 0; i < n(20); i++) {
    const registering = conn.registerCloseCallback(() => undefined);
    const unregistering = conn.unregisterCloseCallback();
    const settled = await Promise.allSettled([registering, unregistering]);
    totalCalls += 2;
    const reasons = settled.flatMap((x) => (x.status === 'rejected' ? [describe(x.reason)] : []));
    if (reasons.length === 0) ok(`register + unregister racing ${label}`);
    else fail(`register + unregister racing ${label}`, reasons.join('; '));
    await expectOk(`register after the race ${label}`, () => conn.registerCloseCallback(() => undefined));
    await conn.unregisterCloseCallback().catch(() => false);
  }
  await conn.close();
  for (let i = 0; i < n(20); i++) {
    const c = await lv.open(uri);
    await expectOk(`registerCloseCallback, left for close ${label}`, () => c.registerCloseCallback(() => undefined));
    await expectOk(`close with a close callback ${label}`, () => c.close());
  }
  done();
}

/** Lifecycle events really delivered: transient domains started and destroyed on the test driver. */
async function deliveredEvents(): Promise<void> {
  const cycles = n(100);
  const done = phase(`lifecycle events from ${cycles} test-driver domains`);
  const conn = await lv.open('test:///default');
  let seen = 0;
  const id = await conn.domainEventRegisterAny(null, lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE, (e) => {
    if (e.domainName.startsWith('strata-stress-')) seen++;
  });
  for (let i = 0; i < cycles; i++) {
    const name = `strata-stress-${process.pid}-${i}`;
    const xml = `<domain type='test'><name>${name}</name><memory>1024</memory><os><type>hvm</type></os></domain>`;
    const dom = await expectOk('createXML test', () => conn.createXML(xml));
    if (dom) await expectOk('destroy test', () => dom.destroy());
  }
  // Started + stopped for each domain.
  const deadline = Date.now() + 10_000;
  while (seen < 2 * cycles && Date.now() < deadline) await sleep(20);
  if (seen >= 2 * cycles) ok('lifecycle events delivered', seen);
  else fail('lifecycle events delivered', `${seen} of ${2 * cycles}`);
  await conn.domainEventDeregisterAny(id);
  // A callback that throws must not crash the process, nor stop later events. Node 20 either
  // raises it as an uncaught exception (with --force-node-api-uncaught-exceptions-policy=true) or,
  // by default for Node-API callbacks, drops it with a DEP0168 warning: both are counted.
  let thrownSeen = 0;
  const onUncaught = (err: unknown): void => {
    if (err instanceof Error && err.message.includes('strata-stress: thrown')) thrownSeen++;
    else throw err;
  };
  const onWarning = (w: Error & { code?: string }): void => {
    if (w.code === 'DEP0168') thrownSeen++;
  };
  process.on('uncaughtException', onUncaught);
  process.on('warning', onWarning);
  // Listeners of one event on one connection share one libvirt registration (the addon fans
  // events out): the throwing one must not starve the others, on the same connection or not.
  let sameConn = 0;
  let otherConn = 0;
  const throwingId = await conn.domainEventRegisterAny(null, lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE, () => {
    throw new Error('strata-stress: thrown by an event callback');
  });
  const sameId = await conn.domainEventRegisterAny(null, lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE, () => {
    sameConn++;
  });
  const other = await lv.open('test:///default');
  const otherId = await other.domainEventRegisterAny(null, lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE, () => {
    otherConn++;
  });
  const startStop = async (): Promise<void> => {
    const dom = await conn.createXML(`<domain type='test'><name>strata-stress-${process.pid}-throw</name><memory>1024</memory><os><type>hvm</type></os></domain>`);
    await dom.destroy();
  };
  for (let i = 0; i < 3; i++) await startStop();
  const until = Date.now() + 5_000;
  while ((thrownSeen < 6 || sameConn < 6 || otherConn < 6) && Date.now() < until) await sleep(20);
  await sleep(50);
  totalCalls++;
  if (thrownSeen >= 6 && sameConn >= 6 && otherConn >= 6) ok('throwing listener: reported, other listeners go on', thrownSeen);
  else fail('throwing listener: reported, other listeners go on', `${thrownSeen} of 6 reported; ${sameConn} of 6 events to the other listener, ${otherConn} of 6 on another connection`);
  // Deregistering one listener leaves the other of the same registration in place.
  await expectOk('deregister one of two listeners', () => conn.domainEventDeregisterAny(throwingId));
  const thrownBefore = thrownSeen;
  await startStop();
  const until2 = Date.now() + 5_000;
  while (sameConn < 8 && Date.now() < until2) await sleep(20);
  await sleep(50);
  process.off('uncaughtException', onUncaught);
  process.off('warning', onWarning);
  totalCalls++;
  if (sameConn >= 8 && thrownSeen === thrownBefore) ok('remaining listener still called');
  else fail('remaining listener still called', `${sameConn} of 8 events; ${thrownSeen - thrownBefore} calls to the deregistered one`);
  await expectReject('deregister the same listener twice', () => conn.domainEventDeregisterAny(throwingId), ['VIR_ERR_INVALID_ARG']);
  await other.domainEventDeregisterAny(otherId);
  await other.close();
  await conn.domainEventDeregisterAny(sameId);
  await conn.close();
  done();
}

const CLOSED_CONN = ['VIR_ERR_INVALID_CONN'];
/** libvirt 9.0 says "disk vda does not have an active block job" with VIR_ERR_INVALID_ARG. */
const NO_JOB = ['VIR_ERR_INVALID_ARG', 'VIR_ERR_OPERATION_INVALID'];
const CLOSED_DOM = ['VIR_ERR_INVALID_DOMAIN'];

/** Calls on closed connections and their domains, double close, wrong arguments and receivers. */
async function misuse(uri: string, known: string): Promise<void> {
  const rounds = n(25);
  const done = phase(`misuse × ${rounds} rounds`);
  const live = await lv.open('test:///default');
  const liveDom = await live.lookupByName('test');
  for (let r = 0; r < rounds; r++) {
    const conn = await lv.open(uri);
    const dom = await conn.lookupByName(known);
    await expectOk('close', () => conn.close());
    await expectOk('close twice', () => conn.close(), (v) => (v === 0 ? null : `gave ${v}`));
    totalCalls += 2;
    if (conn.isClosed()) ok('isClosed after close');
    else fail('isClosed after close', 'false');
    if (!conn.isAlive()) ok('isAlive after close');
    else fail('isAlive after close', 'true');
    await expectOk('unregisterCloseCallback after close', () => conn.unregisterCloseCallback(), (v) => (v ? 'resolved true' : null));
    await expectReject('registerCloseCallback after close', () => conn.registerCloseCallback(() => undefined), CLOSED_CONN);

    await expectReject('closed: getURI', () => conn.getURI(), CLOSED_CONN);
    await expectReject('closed: getHostname', () => conn.getHostname(), CLOSED_CONN);
    await expectReject('closed: getLibVersion', () => conn.getLibVersion(), CLOSED_CONN);
    await expectReject('closed: getVersion', () => conn.getVersion(), CLOSED_CONN);
    await expectReject('closed: setKeepAlive', () => conn.setKeepAlive(5, 3), CLOSED_CONN);
    await expectReject('closed: listAllDomains', () => conn.listAllDomains(), CLOSED_CONN);
    await expectReject('closed: getAllDomainStats', () => conn.getAllDomainStats(), CLOSED_CONN);
    await expectReject('closed: lookupByName', () => conn.lookupByName(known), CLOSED_CONN);
    await expectReject('closed: lookupByUUIDString', () => conn.lookupByUUIDString('6695eb01-f6a4-8304-79aa-97f2502e193f'), CLOSED_CONN);
    await expectReject('closed: createXML', () => conn.createXML('<domain/>'), CLOSED_CONN);
    await expectReject('closed: domainEventRegisterAny', () => conn.domainEventRegisterAny(null, 0, () => undefined), CLOSED_CONN);
    await expectReject('closed: domainEventDeregisterAny', () => conn.domainEventDeregisterAny(1), CLOSED_CONN);

    expectThrow('closed domain: name', dom, 'name', [], Error);
    expectThrow('closed domain: UUIDString', dom, 'UUIDString', [], Error);
    await expectReject('closed domain: state', () => dom.state(), CLOSED_DOM);
    await expectReject('closed domain: info', () => dom.info(), CLOSED_DOM);
    await expectReject('closed domain: XMLDesc', () => dom.XMLDesc(), CLOSED_DOM);
    await expectReject('closed domain: blockInfo', () => dom.blockInfo('vda'), CLOSED_DOM);
    await expectReject('closed domain: destroy', () => dom.destroy(), CLOSED_DOM);
    await expectReject('closed domain: snapshotCreateXML', () => dom.snapshotCreateXML('<domainsnapshot/>'), CLOSED_DOM);
    await expectReject('closed domain: blockPull', () => dom.blockPull('vda', MiB, lv.VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES), CLOSED_DOM);
    await expectReject('closed domain: blockRebase', () => dom.blockRebase('vda', null), CLOSED_DOM);
    await expectReject('closed domain: blockCommit', () => dom.blockCommit('vda', null, null), CLOSED_DOM);
    await expectReject('closed domain: blockCopy', () => dom.blockCopy('vda', '<disk/>', { bandwidth: MiB }), CLOSED_DOM);
    await expectReject('closed domain: blockJobInfo', () => dom.blockJobInfo('vda'), CLOSED_DOM);
    await expectReject('closed domain: blockJobAbort', () => dom.blockJobAbort('vda'), CLOSED_DOM);
    await expectReject('closed domain: blockJobSetSpeed', () => dom.blockJobSetSpeed('vda', MiB), CLOSED_DOM);
    await expectReject('closed domain: setBlockThreshold', () => dom.setBlockThreshold('vda', MiB), CLOSED_DOM);
    // A domain of a closed connection given to an open one.
    expectThrow('domain of another connection', live, 'domainEventRegisterAny', [dom, 0, () => undefined], TypeError);

    // Wrong argument types and values, on a live connection and domain (nothing reaches libvirt).
    expectThrow('args: lookupByName(42)', live, 'lookupByName', [42], TypeError);
    expectThrow("args: lookupByName('')", live, 'lookupByName', [''], TypeError);
    expectThrow('args: lookupByName(NUL)', live, 'lookupByName', ['te\0st'], TypeError);
    expectThrow('args: lookupByName()', live, 'lookupByName', [], TypeError);
    expectThrow('args: lookupByUUIDString({})', live, 'lookupByUUIDString', [{}], TypeError);
    expectThrow('args: listAllDomains(-1)', live, 'listAllDomains', [-1], RangeError);
    expectThrow('args: listAllDomains(1.5)', live, 'listAllDomains', [1.5], RangeError);
    expectThrow("args: listAllDomains('1')", live, 'listAllDomains', ['1'], TypeError);
    expectThrow('args: listAllDomains(unknown bit)', live, 'listAllDomains', [0x80000000], RangeError);
    expectThrow('args: getAllDomainStats(NaN)', live, 'getAllDomainStats', [NaN], RangeError);
    expectThrow('args: createXML(null)', live, 'createXML', [null], TypeError);
    expectThrow("args: setKeepAlive('5')", live, 'setKeepAlive', ['5', 3], TypeError);
    expectThrow('args: setKeepAlive(huge)', live, 'setKeepAlive', [1e12, 3], RangeError);
    expectThrow('args: register(bad dom)', live, 'domainEventRegisterAny', [{}, 0, () => undefined], TypeError);
    expectThrow('args: register(bad id)', live, 'domainEventRegisterAny', [null, 999, () => undefined], RangeError);
    expectThrow('args: register(bad callback)', live, 'domainEventRegisterAny', [null, 0, 'f'], TypeError);
    expectThrow('args: register(domain as callback)', live, 'domainEventRegisterAny', [null, 0, liveDom], TypeError);
    expectThrow('args: deregister(-1)', live, 'domainEventDeregisterAny', [-1], RangeError);
    expectThrow('args: registerCloseCallback(1)', live, 'registerCloseCallback', [1], TypeError);
    expectThrow('args: blockJobInfo()', liveDom, 'blockJobInfo', [], TypeError);
    expectThrow('args: blockJobInfo(null)', liveDom, 'blockJobInfo', [null], TypeError);
    expectThrow('args: blockJobInfo(flags -1)', liveDom, 'blockJobInfo', ['vda', -1], RangeError);
    expectThrow('args: blockJobInfo(flags 2)', liveDom, 'blockJobInfo', ['vda', 2], RangeError);
    expectThrow('args: blockJobSetSpeed(no bandwidth)', liveDom, 'blockJobSetSpeed', ['vda'], TypeError);
    expectThrow('args: blockJobSetSpeed(-1)', liveDom, 'blockJobSetSpeed', ['vda', -1], RangeError);
    expectThrow('args: blockJobSetSpeed(2^60)', liveDom, 'blockJobSetSpeed', ['vda', 2 ** 60], RangeError);
    expectThrow('args: blockJobSetSpeed(2n^64)', liveDom, 'blockJobSetSpeed', ['vda', 2n ** 64n], RangeError);
    expectThrow('args: blockJobSetSpeed(-1n)', liveDom, 'blockJobSetSpeed', ['vda', -1n], RangeError);
    expectThrow('args: blockPull(Infinity)', liveDom, 'blockPull', ['vda', Infinity], RangeError);
    expectThrow("args: blockPull('1')", liveDom, 'blockPull', ['vda', '1'], TypeError);
    expectThrow('args: blockRebase(base 5)', liveDom, 'blockRebase', ['vda', 5], TypeError);
    expectThrow('args: blockCommit(top {})', liveDom, 'blockCommit', ['vda', null, {}], TypeError);
    expectThrow('args: blockCopy(params 5)', liveDom, 'blockCopy', ['vda', '<disk/>', 5], TypeError);
    expectThrow('args: blockCopy(unknown key)', liveDom, 'blockCopy', ['vda', '<disk/>', { speed: 1 }], RangeError);
    expectThrow('args: blockCopy(granularity 2^33)', liveDom, 'blockCopy', ['vda', '<disk/>', { granularity: 2 ** 33 }], RangeError);
    expectThrow('args: blockInfo(flags 1)', liveDom, 'blockInfo', ['vda', 1], RangeError);
    expectThrow('args: setBlockThreshold()', liveDom, 'setBlockThreshold', ['vda'], TypeError);
    expectThrow('args: XMLDesc({})', liveDom, 'XMLDesc', [{}], TypeError);
    expectThrow('args: open(5)', lv, 'open', [5], TypeError);
    expectThrow('args: openReadOnly({})', lv, 'openReadOnly', [{}], TypeError);
    // Constructors called from JS, and methods called on the wrong object.
    expectThrow('new Connection()', { C: lv.Connection }, 'C', [], TypeError);
    totalCalls += 4;
    for (const [label, make] of [
      ['new Connection({})', () => Reflect.construct(lv.Connection as unknown as new (...a: unknown[]) => object, [{}])],
      ['new Domain()', () => Reflect.construct(lv.Domain as unknown as new (...a: unknown[]) => object, [])],
      ['Connection method on a Domain', () => Reflect.apply(Reflect.get(Object.getPrototypeOf(live) as object, 'listAllDomains') as () => unknown, liveDom, [])],
      ['Domain method on a Connection', () => Reflect.apply(Reflect.get(Object.getPrototypeOf(liveDom) as object, 'blockJobInfo') as () => unknown, live, ['vda'])],
    ] as const) {
      try {
        const v = make();
        if (v instanceof Promise) v.catch(() => undefined);
        fail(label, 'did not throw');
      } catch (err) {
        if (err instanceof TypeError) ok(label);
        else fail(label, describe(err));
      }
    }
  }
  // A connection closed while calls are in flight: each call either completes or rejects with a
  // LibvirtError; none may crash or hang.
  for (let r = 0; r < n(40); r++) {
    const conn = await lv.open(uri);
    const dom = await conn.lookupByName(known);
    const calls: Promise<unknown>[] = [];
    for (let k = 0; k < 4; k++) {
      calls.push(conn.listAllDomains(), conn.lookupByName(known), dom.XMLDesc(), conn.getAllDomainStats(lv.VIR_DOMAIN_STATS_STATE));
    }
    calls.push(conn.close());
    const settled = await Promise.allSettled(calls);
    for (const s of settled) {
      totalCalls++;
      if (s.status === 'fulfilled' || s.reason instanceof lv.LibvirtError) ok('call racing close settles');
      else fail('call racing close settles', describe(s.reason));
    }
  }
  await live.close();
  done();
}

/** Wrappers dropped without close and collected: finalizers must release libvirt's objects. */
async function droppedWrappers(uri: string, known: string): Promise<void> {
  const done = phase('dropped wrappers, collected');
  // WeakRefs, not a FinalizationRegistry: V8 may run a registry's callbacks long after the
  // collection (with a couple of thousand entries, none had run seconds later), while a WeakRef
  // is empty as soon as its target is collected.
  const refs: WeakRef<object>[] = [];
  await collect();
  const fdsBefore = openFds();
  // Connections never closed (each holds a socket to libvirtd when remote).
  for (let i = 0; i < n(100); i++) {
    const conn = await lv.open(i % 2 ? uri : 'test:///default');
    refs.push(new WeakRef(conn));
    // Domains of a dropped connection, and calls in flight when the references go.
    for (const d of await conn.listAllDomains()) refs.push(new WeakRef(d));
    void conn
      .lookupByName(i % 2 ? known : 'test')
      .then((d) => d.XMLDesc())
      .catch((err: unknown) => fail('call on a dropped connection', describe(err)));
    totalCalls += 2;
  }
  // Domain wrappers dropped from a connection that stays open.
  const keep = await lv.open(uri);
  for (let i = 0; i < n(1000); i++) {
    refs.push(new WeakRef(await keep.lookupByName(known)));
    totalCalls++;
  }
  await sleep(200);
  await collect(8);
  await keep.close();
  await collect(4);
  const alive = refs.filter((r) => r.deref() !== undefined).length;
  const fdsAfter = openFds();
  totalCalls++;
  // A wrapper still referenced from a stack slot or a settled promise may survive a collection;
  // nearly all must go.
  if (alive <= refs.length * 0.05) ok('wrappers collected', refs.length - alive);
  else fail('wrappers collected', `${alive} of ${refs.length} still alive`);
  totalCalls++;
  if (fdsAfter - fdsBefore <= 3) ok('sockets closed by finalizers');
  else fail('sockets closed by finalizers', `${fdsAfter - fdsBefore} more fds than before (${fdsBefore} → ${fdsAfter})`);
  done();
}

/**
 * Connections dropped while a listener is registered. index.d.ts: "A registered listener keeps
 * the process alive until it is deregistered or the connection is closed, like an open socket",
 * so the connection must stay reachable (as a socket does) for someone to close it; collected, it
 * could never be closed and its listener would keep the process alive for ever. Checked in a
 * child process (same addon, same sanitizer, no leak check), because a process stuck that way can
 * only end through process.exit(), after which LeakSanitizer would report all of V8's heap.
 */
async function droppedListener(uri: string): Promise<void> {
  const done = phase('connections dropped with a listener registered (child process)');
  const child = `
    import { createRequire } from 'node:module';
    const require = createRequire(${JSON.stringify(import.meta.url)});
    let lv;
    const addon = process.env.STRATA_NATIVE_ADDON;
    if (addon) {
      lv = require(addon);
      class LibvirtError extends Error {
        constructor(message, details) { super(message); this.name = 'LibvirtError'; Object.assign(this, details); }
      }
      lv.setErrorClass(LibvirtError);
    } else {
      lv = require('../index.js');
    }
    const refs = [];
    for (const uri of ['test:///default', ${JSON.stringify(uri)}, 'test:///default', ${JSON.stringify(uri)}]) {
      const c = await lv.open(uri);
      await c.domainEventRegisterAny(null, 0, () => undefined);
      refs.push([uri, new WeakRef(c)]);
    }
    for (let i = 0; i < 6; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
    const collected = refs.filter(([, r]) => r.deref() === undefined).map(([u]) => u);
    for (const [, r] of refs) await r.deref()?.close();
    console.log(JSON.stringify({ collected }));
    setTimeout(() => { console.log(JSON.stringify({ hung: true })); process.exit(3); }, 5000).unref();
  `;
  const env: NodeJS.ProcessEnv = { ...process.env, ASAN_OPTIONS: `${process.env['ASAN_OPTIONS'] ?? ''}:detect_leaks=0` };
  if (PRELOAD) env['LD_PRELOAD'] = PRELOAD;
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolvePromise) => {
    execFile(process.execPath, ['--expose-gc', '--input-type=module', '-e', child], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      resolvePromise({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
  const lines = result.stdout.split('\n').filter(Boolean).map((l): { collected?: string[]; hung?: boolean } => {
    try {
      return JSON.parse(l) as { collected?: string[]; hung?: boolean };
    } catch {
      return {};
    }
  });
  const collected = lines.find((l) => l.collected)?.collected;
  const hung = lines.some((l) => l.hung);
  totalCalls += 8;
  if (collected === undefined) {
    fail('dropped-listener child', `exit ${result.code}: ${result.stderr.trim().slice(0, 500)}`);
  } else if (!hung && result.code === 0) {
    // Listeners do not hold their connection or the process (index.d.ts): a connection collected
    // with one is closed by its finalizer, and the process still exits on its own.
    ok('connections collected with a listener', collected.length);
    ok('process exits on its own with listeners of collected connections');
  } else {
    fail(
      'process exits on its own with listeners of collected connections',
      `${collected.length} of 4 connections were collected with a listener registered, and the child ${hung ? 'hung until it was made to exit' : `exited with ${result.code}`}`,
    );
  }
  if (/ERROR: AddressSanitizer/.test(result.stderr)) fail('dropped-listener child', result.stderr.slice(result.stderr.indexOf('ERROR: AddressSanitizer'), 3000));
  done();
}

/** A real pull at 1 MiB/s: thousands of blockJobInfo + blockJobSetSpeed, 8 in flight for a part, then abort. */
async function pullOnLabDomain(conn: Connection, lab: LabDomain): Promise<void> {
  const total = n(2000);
  const done = phase(`pull at 1 MiB/s: ${2 * total} blockJobInfo + blockJobSetSpeed`);
  const dom = lab.domain;
  const INFO = lv.VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES;
  const SPEED = lv.VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES;
  // Speeds only ever go down: QEMU 7.2 wakes a throttled job whenever its speed is raised and
  // lets it copy a chunk at once, so a stream of increases (even by 1 byte/s) runs the pull at
  // full speed and it completes within a second or two.
  const seqSpeed = (i: number): number => MiB - i;
  let cancelled = false;
  const jobEvents: string[] = [];
  const started = Date.now();
  const eventId = await conn.domainEventRegisterAny(dom, lv.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, (e) => {
    jobEvents.push(`${e.disk} status ${e.status} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (e.disk === 'vda' && e.status === lv.VIR_DOMAIN_BLOCK_JOB_CANCELED) cancelled = true;
  });
  const pathEventId = await conn.domainEventRegisterAny(dom, lv.VIR_DOMAIN_EVENT_ID_BLOCK_JOB, () => undefined);
  await expectOk('blockPull 1 MiB/s', () => dom.blockPull('vda', MiB, lv.VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES));
  let lastCur = 0;
  const checkInfo =
    (allowed: readonly number[], ordered: boolean) =>
    (r: Native.BlockJobInfo): string | null => {
      if (!('type' in r)) return `no job; events: ${jobEvents.join(', ') || 'none'}`;
      if (r.type !== lv.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL) return `type ${r.type}`;
      if (!allowed.includes(r.bandwidth)) return `bandwidth ${r.bandwidth}, expected ${allowed.join(' or ')}`;
      if (ordered && r.cur < lastCur) return `cur went back ${lastCur} → ${r.cur}`;
      lastCur = Math.max(lastCur, r.cur);
      return null;
    };
  // One at a time: set a speed, read it back.
  const half = Math.floor(total / 2);
  for (let i = 0; i < half; i++) {
    const speed = seqSpeed(i);
    await expectOk('blockJobSetSpeed', () => dom.blockJobSetSpeed('vda', speed, SPEED), (v) => (v === 0 ? null : `gave ${v}`));
    await expectOk('blockJobInfo', () => dom.blockJobInfo('vda', INFO), checkInfo([speed], true));
  }
  // 8 in flight: the two kinds interleaved (all setting one lower speed, since calls in flight
  // complete in any order), plus the stats of the whole chain now and then.
  const before = seqSpeed(half - 1);
  const lower = seqSpeed(half);
  await inFlight(2 * (total - half), 8, async (i) => {
    if (i % 2 === 0) {
      await expectOk('blockJobSetSpeed ×8', () => dom.blockJobSetSpeed('vda', lower, SPEED), (v) => (v === 0 ? null : `gave ${v}`));
    } else if (i % 50 === 1) {
      await expectOk('getAllDomainStats ×8 (backing)', () => conn.getAllDomainStats(lv.VIR_DOMAIN_STATS_BLOCK, lv.VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING));
    } else {
      await expectOk('blockJobInfo ×8', () => dom.blockJobInfo('vda', INFO), checkInfo([before, lower], false));
    }
  });
  await expectOk('blockJobAbort async', () => dom.blockJobAbort('vda', lv.VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC));
  const deadline = Date.now() + 30_000;
  while (!cancelled && Date.now() < deadline) await sleep(20);
  totalCalls++;
  if (cancelled) ok('BLOCK_JOB_2 cancelled event');
  else fail('BLOCK_JOB_2 cancelled event', 'not seen within 30 s');
  // The job disappears after its event (libvirt 9.0 may lag a little: see block-jobs.md).
  let gone = false;
  for (let i = 0; i < 100 && !gone; i++) {
    const r = await dom.blockJobInfo('vda', INFO);
    gone = Object.keys(r).length === 0;
    if (!gone) await sleep(50);
  }
  totalCalls++;
  if (gone) ok('no job after abort');
  else fail('no job after abort', 'still listed 5 s after the event');
  await expectReject('blockJobSetSpeed without a job', () => dom.blockJobSetSpeed('vda', MiB, SPEED), NO_JOB);
  await expectReject('blockJobAbort without a job', () => dom.blockJobAbort('vda'), NO_JOB);
  await conn.domainEventDeregisterAny(eventId);
  await conn.domainEventDeregisterAny(pathEventId);
  done();
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = Date.now();
  console.log(`strata stress: addon ${process.env['STRATA_NATIVE_ADDON'] ?? 'native/index.js'}, uri ${URI}, scale ${SCALE}`);
  const conn = await lv.open(URI);
  // Named like the test harness's labs (strata-test-<pid>-<token>-<n>-<tag>, under
  // $TMPDIR/strata-lab), so its sweeper removes what a killed run leaves behind.
  const labRoot = join(tmpdir(), 'strata-lab');
  const labName = `strata-test-${process.pid}-${randomBytes(3).toString('hex')}-1-stress`;
  await mkdir(labRoot, { recursive: true });
  await makeTraversable(labRoot);
  let lab: LabDomain | null = null;
  try {
    process.stdout.write('-- lab domain … ');
    lab = await createLabDomain(conn, {
      name: labName,
      dir: join(labRoot, labName),
      layers: 3,
      virtualSize: 256 * MiB,
      baseDataBytes: 64 * MiB,
      overlayDataBytes: 2 * MiB,
      autoDestroy: true,
    });
    console.log(`${lab.name} (${lab.layers.length} layers)`);

    const test = await lv.open('test:///default');
    const l = lab;
    const phases: [string, () => Promise<void>][] = [
      ['open-test', () => openCloseCycles('test:///default', n(1000), 'test')],
      ['open-qemu', () => openCloseCycles(URI, n(300), labName)],
      ['calls-test', () => callsOnOneConnection(test, 'test', 'test', null)],
      ['calls-qemu', () => callsOnOneConnection(conn, 'qemu', labName, 'vda')],
      ['events-qemu', () => eventCycles(conn, 'qemu', l.domain)],
      ['events-test', async () => eventCycles(test, 'test', await test.lookupByName('test'))],
      ['closecb-qemu', () => closeCallbackCycles(URI, 'qemu')],
      ['closecb-test', () => closeCallbackCycles('test:///default', 'test')],
      ['delivered', () => deliveredEvents()],
      ['misuse', () => misuse(URI, labName)],
      ['dropped', () => droppedWrappers(URI, labName)],
      ['pull', () => pullOnLabDomain(conn, l)],
      ['dropped-listener', () => droppedListener(URI)],
    ];
    const unknown = [...ONLY, ...SKIP].filter((k) => !phases.some(([key]) => key === k));
    if (unknown.length > 0) throw new Error(`unknown phase ${unknown.join(', ')}: the phases are ${phases.map(([k]) => k).join(', ')}`);
    for (const [key, run] of phases) {
      if (SKIP.includes(key) || (ONLY.length > 0 && !ONLY.includes(key))) {
        console.log(`-- ${key}: skipped`);
        continue;
      }
      await run();
    }
    await test.close();
  } finally {
    if (lab) await removeLabDomain(conn, lab).catch((err: unknown) => console.error(`strata stress: cleanup: ${describe(err)}`));
    await conn.close();
  }

  const width = Math.max(...[...counts.keys()].map((k) => k.length));
  console.log('\ncounts:');
  for (const [k, v] of [...counts.entries()].sort(([a], [b]) => a.localeCompare(b))) console.log(`  ${k.padEnd(width)}  ${v}`);
  console.log(`\n${totalCalls} calls in ${((Date.now() - started) / 1000).toFixed(1)} s; ${failures.length === 0 ? 'all as expected' : `${failures.length} unexpected`}`);
  for (const f of failures) console.log(`  UNEXPECTED ${f}`);
  return failures.length === 0 ? 0 : 1;
}

process.exitCode = await main().catch((err: unknown) => {
  console.error('\nstrata stress: aborted:', err);
  return 1;
});
// Collect what is left, so LeakSanitizer at exit sees only what nothing can free any more.
await collect();
// Exit the ordinary way (so the addon's environment teardown runs before LeakSanitizer looks),
// but say so and stop if something still holds the event loop.
setTimeout(() => {
  console.error('strata stress: the process did not exit 10 s after the end: something still holds the event loop');
  process.exit(3);
}, 10_000).unref();
