// The misuse phase: calls on closed connections and their domains, double close, wrong
// arguments, constructors and receivers, and calls racing close(). See stress.mts.
import { describe, expectOk, expectReject, expectThrow, fail, lv, n, ok, phase, tally } from './kit.mts';
import { MiB } from '../../src/main/core/lab/images.ts';

const CLOSED_CONN = ['VIR_ERR_INVALID_CONN'];
/** libvirt 9.0 says "disk vda does not have an active block job" with VIR_ERR_INVALID_ARG. */
export const NO_JOB = ['VIR_ERR_INVALID_ARG', 'VIR_ERR_OPERATION_INVALID'];
const CLOSED_DOM = ['VIR_ERR_INVALID_DOMAIN'];

/** Calls on closed connections and their domains, double close, wrong arguments and receivers. */
export async function misuse(uri: string, known: string): Promise<void> {
  const rounds = n(25);
  const done = phase(`misuse × ${rounds} rounds`);
  const live = await lv.open('test:///default');
  const liveDom = await live.lookupByName('test');
  for (let r = 0; r < rounds; r++) {
    const conn = await lv.open(uri);
    const dom = await conn.lookupByName(known);
    await expectOk('close', () => conn.close());
    await expectOk('close twice', () => conn.close(), (v) => (v === 0 ? null : `gave ${v}`));
    tally.calls += 2;
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
    await expectReject('closed: getType', () => conn.getType(), CLOSED_CONN);
    await expectReject('closed: getCapabilities', () => conn.getCapabilities(), CLOSED_CONN);
    await expectReject('closed: getDomainCapabilities', () => conn.getDomainCapabilities(null, null, null, null), CLOSED_CONN);
    await expectReject('closed: setKeepAlive', () => conn.setKeepAlive(5, 3), CLOSED_CONN);
    await expectReject('closed: listAllDomains', () => conn.listAllDomains(), CLOSED_CONN);
    await expectReject('closed: getAllDomainStats', () => conn.getAllDomainStats(), CLOSED_CONN);
    await expectReject('closed: lookupByName', () => conn.lookupByName(known), CLOSED_CONN);
    await expectReject('closed: lookupByUUIDString', () => conn.lookupByUUIDString('6695eb01-f6a4-8304-79aa-97f2502e193f'), CLOSED_CONN);
    await expectReject('closed: createXML', () => conn.createXML('<domain/>'), CLOSED_CONN);
    await expectReject('closed: defineXML', () => conn.defineXML('<domain/>'), CLOSED_CONN);
    await expectReject('closed: domainEventRegisterAny', () => conn.domainEventRegisterAny(null, 0, () => undefined), CLOSED_CONN);
    await expectReject('closed: domainEventDeregisterAny', () => conn.domainEventDeregisterAny(1), CLOSED_CONN);

    expectThrow('closed domain: name', dom, 'name', [], Error);
    expectThrow('closed domain: UUIDString', dom, 'UUIDString', [], Error);
    await expectReject('closed domain: state', () => dom.state(), CLOSED_DOM);
    await expectReject('closed domain: info', () => dom.info(), CLOSED_DOM);
    await expectReject('closed domain: XMLDesc', () => dom.XMLDesc(), CLOSED_DOM);
    await expectReject('closed domain: blockInfo', () => dom.blockInfo('vda'), CLOSED_DOM);
    await expectReject('closed domain: destroy', () => dom.destroy(), CLOSED_DOM);
    await expectReject('closed domain: createWithFlags', () => dom.createWithFlags(), CLOSED_DOM);
    await expectReject('closed domain: blockResize', () => dom.blockResize('vda', MiB, lv.VIR_DOMAIN_BLOCK_RESIZE_BYTES), CLOSED_DOM);
    await expectReject('closed domain: snapshotCreateXML', () => dom.snapshotCreateXML('<domainsnapshot/>'), CLOSED_DOM);
    await expectReject('closed domain: listAllSnapshots', () => dom.listAllSnapshots(), CLOSED_DOM);
    await expectReject('closed domain: snapshotLookupByName', () => dom.snapshotLookupByName('s'), CLOSED_DOM);
    await expectReject('closed domain: blockPull', () => dom.blockPull('vda', MiB, lv.VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES), CLOSED_DOM);
    await expectReject('closed domain: blockRebase', () => dom.blockRebase('vda', null), CLOSED_DOM);
    await expectReject('closed domain: blockCommit', () => dom.blockCommit('vda', null, null), CLOSED_DOM);
    await expectReject('closed domain: blockCopy', () => dom.blockCopy('vda', '<disk/>', { bandwidth: MiB }), CLOSED_DOM);
    await expectReject('closed domain: blockJobInfo', () => dom.blockJobInfo('vda'), CLOSED_DOM);
    await expectReject('closed domain: blockJobAbort', () => dom.blockJobAbort('vda'), CLOSED_DOM);
    await expectReject('closed domain: blockJobSetSpeed', () => dom.blockJobSetSpeed('vda', MiB), CLOSED_DOM);
    await expectReject('closed domain: setBlockThreshold', () => dom.setBlockThreshold('vda', MiB), CLOSED_DOM);
    await expectReject('closed domain: suspend', () => dom.suspend(), CLOSED_DOM);
    await expectReject('closed domain: resume', () => dom.resume(), CLOSED_DOM);
    await expectReject('closed domain: backupBegin', () => dom.backupBegin('<domainbackup/>', null), CLOSED_DOM);
    await expectReject('closed domain: backupGetXMLDesc', () => dom.backupGetXMLDesc(), CLOSED_DOM);
    await expectReject('closed domain: jobStats', () => dom.jobStats(lv.VIR_DOMAIN_JOB_STATS_COMPLETED), CLOSED_DOM);
    await expectReject('closed domain: abortJob', () => dom.abortJob(), CLOSED_DOM);
    await expectReject('closed domain: checkpointCreateXML', () => dom.checkpointCreateXML('<domaincheckpoint/>'), CLOSED_DOM);
    await expectReject('closed domain: listAllCheckpoints', () => dom.listAllCheckpoints(), CLOSED_DOM);
    await expectReject('closed domain: checkpointDelete', () => dom.checkpointDelete('c'), CLOSED_DOM);
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
    expectThrow('args: defineXML(null)', live, 'defineXML', [null], TypeError);
    expectThrow('args: defineXML(unknown bit)', live, 'defineXML', ['<domain/>', 0x80000000], RangeError);
    expectThrow('args: getDomainCapabilities(5)', live, 'getDomainCapabilities', [5, null, null, null], TypeError);
    expectThrow('args: getDomainCapabilities(flags 1)', live, 'getDomainCapabilities', [null, null, null, null, 1], RangeError);
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
    expectThrow('args: blockResize()', liveDom, 'blockResize', ['vda'], TypeError);
    expectThrow('args: blockResize(-1)', liveDom, 'blockResize', ['vda', -1], RangeError);
    expectThrow('args: createWithFlags(unknown bit)', liveDom, 'createWithFlags', [0x80000000], RangeError);
    expectThrow('args: backupBegin()', liveDom, 'backupBegin', [], TypeError);
    expectThrow('args: backupBegin(checkpointXml 5)', liveDom, 'backupBegin', ['<domainbackup/>', 5], TypeError);
    expectThrow('args: backupBegin(unknown bit)', liveDom, 'backupBegin', ['<domainbackup/>', null, 0x80000000], RangeError);
    expectThrow('args: backupGetXMLDesc(flags 1)', liveDom, 'backupGetXMLDesc', [1], RangeError);
    expectThrow("args: jobStats('1')", liveDom, 'jobStats', ['1'], TypeError);
    expectThrow('args: jobStats(unknown bit)', liveDom, 'jobStats', [0x80000000], RangeError);
    expectThrow('args: abortJob(flags 1)', liveDom, 'abortJob', [1], RangeError);
    expectThrow('args: checkpointCreateXML(null)', liveDom, 'checkpointCreateXML', [null], TypeError);
    expectThrow('args: checkpointCreateXML(unknown bit)', liveDom, 'checkpointCreateXML', ['<domaincheckpoint/>', 0x80000000], RangeError);
    expectThrow('args: listAllCheckpoints(unknown bit)', liveDom, 'listAllCheckpoints', [0x80000000], RangeError);
    expectThrow('args: listAllCheckpoints(xmlFlags unknown bit)', liveDom, 'listAllCheckpoints', [0, 0x80000000], RangeError);
    expectThrow("args: checkpointDelete('')", liveDom, 'checkpointDelete', [''], TypeError);
    expectThrow('args: checkpointDelete(unknown bit)', liveDom, 'checkpointDelete', ['c', 0x80000000], RangeError);
    expectThrow('args: register(IO_ERROR, left out)', live, 'domainEventRegisterAny', [null, lv.VIR_DOMAIN_EVENT_ID_IO_ERROR, () => undefined], RangeError);
    expectThrow('args: listAllSnapshots(unknown bit)', liveDom, 'listAllSnapshots', [0x80000000], RangeError);
    expectThrow("args: snapshotLookupByName('')", liveDom, 'snapshotLookupByName', [''], TypeError);
    expectThrow('args: XMLDesc({})', liveDom, 'XMLDesc', [{}], TypeError);
    expectThrow('args: open(5)', lv, 'open', [5], TypeError);
    expectThrow('args: openReadOnly({})', lv, 'openReadOnly', [{}], TypeError);
    // Constructors called from JS, and methods called on the wrong object.
    expectThrow('new Connection()', { C: lv.Connection }, 'C', [], TypeError);
    tally.calls += 4;
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
      calls.push(dom.listAllCheckpoints(), dom.jobStats());
    }
    calls.push(conn.close());
    const settled = await Promise.allSettled(calls);
    for (const s of settled) {
      tally.calls++;
      if (s.status === 'fulfilled' || s.reason instanceof lv.LibvirtError) ok('call racing close settles');
      else fail('call racing close settles', describe(s.reason));
    }
  }
  await live.close();
  done();
}

