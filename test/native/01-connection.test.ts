// Connections: opening and closing the test driver and the real libvirtd, what they report, how
// failures surface (LibvirtError with libvirt's code and domain names), and closed connections.
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { libvirt, TEST_URI, virsh } from '../lab/harness.ts';
import { startRemoteForwarder, type RemoteForwarder } from '../lab/remote-forwarder.ts';

const { LibvirtError } = libvirt;

/** A URI without a host part (qemu:///system, test:///default) is served on this machine. */
function isLocal(uri: string): boolean {
  return /^[a-z0-9+]+:\/\/\//.test(uri);
}

function versionString(v: number): string {
  return `${Math.floor(v / 1_000_000)}.${Math.floor(v / 1000) % 1000}.${v % 1000}`;
}

async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<InstanceType<typeof LibvirtError>> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof LibvirtError, `expected a LibvirtError, got ${String(err)}`);
    assert.equal(err.name, 'LibvirtError');
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected a rejection with ${code}`);
}

for (const uri of ['test:///default', TEST_URI]) {
  describe(`a connection to ${uri}`, () => {
    test('opens, answers, and closes', async () => {
      const conn = await libvirt.open(uri);
      try {
        assert.equal(conn.isClosed(), false);
        assert.equal(conn.isAlive(), true);
        assert.equal(await conn.getURI(), uri);
        const host = await conn.getHostname();
        const lib = await conn.getLibVersion();
        assert.ok(Number.isInteger(lib) && lib >= 8_000_000, `libVersion ${lib}`);
        if (isLocal(uri)) {
          // A local driver runs on this machine, with the library virsh links too.
          assert.equal(host, hostname());
          assert.match(await virsh(['version'], uri), new RegExp(`Using library: libvirt ${versionString(lib).replace(/\./g, '\\.')}\\b`));
        } else {
          assert.ok(host.length > 0);
        }
        const hv = await conn.getVersion();
        assert.ok(Number.isInteger(hv) && hv > 0, `hypervisor version ${hv}`);
      } finally {
        assert.equal(await conn.close(), 0);
      }
      assert.equal(conn.isClosed(), true);
      assert.equal(conn.isAlive(), false);
    });
  });
}

describe('closing', () => {
  test('close is idempotent, also when called twice at once', async () => {
    const conn = await libvirt.open('test:///default');
    const [a, b] = await Promise.all([conn.close(), conn.close()]);
    assert.equal(a, 0);
    assert.equal(b, 0);
    assert.equal(await conn.close(), 0);
    assert.equal(conn.isClosed(), true);
  });

  test('a call on a closed connection rejects (not throws) with VIR_ERR_INVALID_CONN', async () => {
    const conn = await libvirt.open('test:///default');
    await conn.close();
    const pending = conn.getURI();
    assert.ok(pending instanceof Promise, 'the refusal comes as a rejected Promise');
    const err = await rejectsWith(pending, 'VIR_ERR_INVALID_CONN', /closed/);
    assert.equal(err.domain, 'VIR_FROM_NONE');
    await rejectsWith(conn.listAllDomains(), 'VIR_ERR_INVALID_CONN');
    await rejectsWith(conn.lookupByName('test'), 'VIR_ERR_INVALID_CONN');
    await rejectsWith(conn.getLibVersion(), 'VIR_ERR_INVALID_CONN');
    await rejectsWith(
      conn.domainEventRegisterAny(null, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, () => {}),
      'VIR_ERR_INVALID_CONN',
    );
  });

  test("a domain of a closed connection rejects with VIR_ERR_INVALID_DOMAIN", async () => {
    const conn = await libvirt.open('test:///default');
    const dom = await conn.lookupByName('test');
    await conn.close();
    await rejectsWith(dom.state(), 'VIR_ERR_INVALID_DOMAIN', /connection is closed/);
    await rejectsWith(dom.blockJobInfo('vda'), 'VIR_ERR_INVALID_DOMAIN');
  });
});

describe('failures to connect', () => {
  test('an unreachable URI rejects with a LibvirtError carrying code and domain names', async () => {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const err = await rejectsWith(libvirt.open('qemu+tcp://127.0.0.1:1/system'), 'VIR_ERR_SYSTEM_ERROR', /127\.0\.0\.1:1/);
    assert.ok(err instanceof Error);
    assert.equal(err.domain, 'VIR_FROM_RPC');
    assert.equal(err.level, 'VIR_ERR_ERROR');
    assert.equal(err.codeNumber, libvirt.constants['VIR_ERR_SYSTEM_ERROR']);
    assert.equal(err.domainNumber, libvirt.constants['VIR_FROM_RPC']);
    // int1 carries errno: ECONNREFUSED.
    assert.equal(err.int1, 111);
  });

  test('a URI libvirtd does not serve rejects with its own error', async () => {
    const err = await rejectsWith(libvirt.open('qemu:///nope'), 'VIR_ERR_INTERNAL_ERROR', /qemu URI path/);
    assert.match(err.domain, /^VIR_FROM_[A-Z_]+$/);
  });

  test('a read-only connection refuses changes with VIR_ERR_OPERATION_DENIED', async () => {
    const ro = await libvirt.openReadOnly('test:///default');
    try {
      const dom = await ro.lookupByName('test');
      assert.equal((await dom.state())[0], libvirt.VIR_DOMAIN_RUNNING);
      await rejectsWith(dom.destroy(), 'VIR_ERR_OPERATION_DENIED', /read only/);
    } finally {
      await ro.close();
    }
  });
});

describe('a remote connection over TCP on loopback', () => {
  // The test's own forwarder to the local daemon's UNIX socket: libvirtd need not listen on TCP.
  let forwarder: RemoteForwarder;
  before(async () => {
    forwarder = await startRemoteForwarder();
  });
  after(() => forwarder.close());

  test('reaches the same daemon through the remote driver', async (t) => {
    const conn = await libvirt.open(forwarder.uri);
    t.after(() => conn.close());
    const local = await libvirt.open('qemu:///system');
    t.after(() => local.close());
    assert.equal(await conn.getURI(), forwarder.uri);
    assert.equal(conn.isAlive(), true);
    assert.ok(Array.isArray(await conn.listAllDomains()));
    assert.equal(await conn.getVersion(), await local.getVersion());
  });
});
