// Argument checks: the binding refuses bad arguments synchronously, on the JS thread, with a
// TypeError (wrong type, missing) or a RangeError (bad number, unknown flag bits), before anything
// reaches libvirtd. assert.throws only passes on a synchronous throw: a method that returned a
// rejected Promise instead would fail it (and leave an unhandled rejection).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { libvirt, type Connection, type Domain } from '../lab/harness.ts';

/** Calls a method with arguments its type declaration would not allow. */
function callRaw(target: object, method: string, ...args: unknown[]): unknown {
  const fn: unknown = Reflect.get(target, method);
  assert.equal(typeof fn, 'function', `${method} is a method`);
  return Reflect.apply(fn as (...a: unknown[]) => unknown, target, args);
}

function throwsSync(target: object, method: string, args: unknown[], type: typeof TypeError | typeof RangeError, message?: RegExp): void {
  assert.throws(
    () => callRaw(target, method, ...args),
    (err: unknown) => {
      assert.ok(err instanceof type, `${method}(${args.map(String).join(', ')}) threw ${String(err)}, not a ${type.name}`);
      assert.ok(!(err instanceof libvirt.LibvirtError));
      if (message) assert.match(err.message, message);
      return true;
    },
  );
}

const MiB = 1024 * 1024;
const PULL_BYTES = libvirt.VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES;

describe('argument checks', () => {
  let conn: Connection;
  let dom: Domain;
  before(async () => {
    conn = await libvirt.open('test:///default');
    dom = await conn.lookupByName('test');
  });
  after(() => conn.close());

  test('a missing, empty or non-string disk is a TypeError', () => {
    for (const method of ['blockPull', 'blockJobInfo', 'blockJobAbort', 'blockJobSetSpeed', 'blockRebase', 'blockCommit', 'blockInfo']) {
      throwsSync(dom, method, [], TypeError, /disk must be a string/);
      throwsSync(dom, method, [''], TypeError, /disk must not be empty/);
      throwsSync(dom, method, [42], TypeError, /disk must be a string/);
      throwsSync(dom, method, [null], TypeError);
    }
    throwsSync(dom, 'blockPull', ['vd\0a'], TypeError, /NUL/);
  });

  test('bandwidth: negative, fractional, NaN, infinite or too large is a RangeError; a string is a TypeError', () => {
    for (const bad of [-1, -MiB, 1.5, 0.1, NaN, Infinity, -Infinity, 2 ** 53]) {
      throwsSync(dom, 'blockPull', ['vda', bad], RangeError, /bandwidth/);
      throwsSync(dom, 'blockPull', ['vda', bad, PULL_BYTES], RangeError, /bandwidth/);
      throwsSync(dom, 'blockJobSetSpeed', ['vda', bad], RangeError, /bandwidth/);
      throwsSync(dom, 'blockRebase', ['vda', null, bad], RangeError, /bandwidth/);
      throwsSync(dom, 'blockCommit', ['vda', null, null, bad], RangeError, /bandwidth/);
    }
    for (const bad of ['1', '1048576', {}, [], true]) {
      throwsSync(dom, 'blockPull', ['vda', bad], TypeError, /bandwidth/);
      throwsSync(dom, 'blockJobSetSpeed', ['vda', bad], TypeError, /bandwidth/);
    }
    // BigInt: only 0 to 2^64-1.
    throwsSync(dom, 'blockPull', ['vda', -1n], RangeError, /bandwidth/);
    throwsSync(dom, 'blockPull', ['vda', 2n ** 64n], RangeError, /bandwidth/);
    // setSpeed has no default: 0 (unlimited) must be said.
    throwsSync(dom, 'blockJobSetSpeed', ['vda'], TypeError, /bandwidth is required/);
  });

  test('unknown flag bits, and flags that are not whole 32-bit numbers, are refused', () => {
    // Bits outside each call's own enum: a RangeError naming the enum.
    throwsSync(dom, 'blockPull', ['vda', 0, 1], RangeError, /virDomainBlockPullFlags/);
    throwsSync(dom, 'blockPull', ['vda', 0, PULL_BYTES | 0x100], RangeError, /0x100/);
    throwsSync(dom, 'blockJobInfo', ['vda', 2], RangeError, /virDomainBlockJobInfoFlags/);
    throwsSync(dom, 'blockJobAbort', ['vda', 4], RangeError, /virDomainBlockJobAbortFlags/);
    throwsSync(dom, 'blockJobSetSpeed', ['vda', 0, 2], RangeError, /virDomainBlockJobSetSpeedFlags/);
    throwsSync(dom, 'blockRebase', ['vda', null, 0, 0x80000000], RangeError, /virDomainBlockRebaseFlags/);
    throwsSync(dom, 'blockCommit', ['vda', null, null, 0, 0x20], RangeError, /virDomainBlockCommitFlags/);
    throwsSync(dom, 'XMLDesc', [0x40000000], RangeError, /virDomainXMLFlags/);
    throwsSync(conn, 'listAllDomains', [0x80000000], RangeError);
    throwsSync(conn, 'createXML', ['<domain/>', 0x100], RangeError, /virDomainCreateFlags/);
    // Not a whole number from 0 to 2^32-1.
    for (const bad of [-1, 1.5, NaN, 2 ** 32, Infinity]) throwsSync(dom, 'blockJobAbort', ['vda', bad], RangeError, /flags/);
    for (const bad of ['1', 1n, {}]) throwsSync(dom, 'blockJobAbort', ['vda', bad], TypeError, /flags/);
  });

  test('other arguments: rebase base, copy params, event IDs and callbacks, keepalive, URI', () => {
    throwsSync(dom, 'blockRebase', ['vda', 5], TypeError, /base must be a string/);
    throwsSync(dom, 'blockCommit', ['vda', null, 7], TypeError, /top must be a string/);
    throwsSync(dom, 'blockCopy', ['vda'], TypeError, /destxml/);
    throwsSync(dom, 'blockCopy', ['vda', '<disk/>', 'fast'], TypeError, /params/);
    throwsSync(dom, 'blockCopy', ['vda', '<disk/>', { speed: 1 }], RangeError, /unknown key 'speed'/);
    throwsSync(dom, 'blockCopy', ['vda', '<disk/>', { bandwidth: -1 }], RangeError, /bandwidth/);
    throwsSync(dom, 'blockCopy', ['vda', '<disk/>', { granularity: 2 ** 33 }], RangeError, /granularity/);
    throwsSync(dom, 'blockCopy', ['vda', '<disk/>', { bandwidth: '1' }], TypeError, /bandwidth/);

    throwsSync(conn, 'domainEventRegisterAny', [null, 9999, () => {}], RangeError, /event ID 9999/);
    throwsSync(conn, 'domainEventRegisterAny', [null, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, 'not a function'], TypeError, /callback/);
    throwsSync(conn, 'domainEventRegisterAny', [{}, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, () => {}], TypeError, /dom must be a Domain/);
    throwsSync(conn, 'domainEventRegisterAny', [null, 'lifecycle', () => {}], TypeError, /eventID/);
    throwsSync(conn, 'domainEventDeregisterAny', [-1], RangeError, /callbackID/);
    throwsSync(conn, 'domainEventDeregisterAny', [NaN], RangeError, /callbackID/);
    throwsSync(conn, 'setKeepAlive', ['5', 3], TypeError, /interval/);
    throwsSync(conn, 'setKeepAlive', [5, -1], RangeError, /count/);
    throwsSync(conn, 'lookupByName', [''], TypeError, /name must not be empty/);

    throwsSync(libvirt, 'open', [42], TypeError, /uri must be a string/);
    throwsSync(libvirt, 'openReadOnly', [{}], TypeError, /uri must be a string/);
  });

  test('refused calls leave the connection usable', async () => {
    throwsSync(dom, 'blockPull', ['vda', -1], RangeError);
    assert.equal((await dom.state())[0], libvirt.VIR_DOMAIN_RUNNING);
    assert.equal(await conn.getURI(), 'test:///default');
  });
});
