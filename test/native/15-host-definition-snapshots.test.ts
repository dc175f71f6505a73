// Host capabilities, domain definition and start, snapshot listing and lookup, and disk resizing,
// through the addon and through the typed facade, on libvirt's in-process test driver
// (test:///default), checked against virsh on the same URI where virsh can say.
//
// What the test driver does not do, so what is checked here is its refusal, carrying libvirt's
// code: virConnectGetDomainCapabilities and virDomainBlockResize (VIR_ERR_NO_SUPPORT, reported by
// libvirt's API layer as VIR_FROM_DOMAIN); their answers need QEMU's driver (qemu:///system).
// Its virDomainCreateWithFlags takes no flags (VIR_DOMAIN_START_PAUSED is VIR_ERR_INVALID_ARG).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LibvirtConnection } from '../../src/main/libvirt/connection.ts';
import { libvirtCode } from '../../src/main/libvirt/errors.ts';
import { libvirt, virsh, type Connection, type Domain } from '../lab/harness.ts';
import { assertLibvirtError, rejection } from './block-helpers.ts';

const URI = 'test:///default';
const {
  VIR_DOMAIN_XML_INACTIVE: INACTIVE,
  VIR_DOMAIN_XML_SECURE: SECURE,
  VIR_DOMAIN_DEFINE_VALIDATE: VALIDATE,
  VIR_DOMAIN_START_PAUSED: START_PAUSED,
  VIR_DOMAIN_RUNNING: RUNNING,
  VIR_DOMAIN_SHUTOFF: SHUTOFF,
  VIR_DOMAIN_SNAPSHOT_LIST_ROOTS: LIST_ROOTS,
  VIR_DOMAIN_SNAPSHOT_LIST_LEAVES: LIST_LEAVES,
  VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN: DELETE_CHILDREN,
  VIR_DOMAIN_BLOCK_RESIZE_BYTES: RESIZE_BYTES,
} = libvirt;

let counter = 0;
/** A name no other test of this process uses: the test driver's state lives as long as the process. */
const uniqueName = (tag: string): string => `strata-${tag}-${process.pid}-${++counter}`;

/** The test driver's own domain 'test', renamed and without its UUID: a definition of a new domain. */
async function newDefinition(conn: Connection, name: string, description = ''): Promise<string> {
  const xml = await (await conn.lookupByName('test')).XMLDesc(INACTIVE | SECURE);
  return xml
    .replace(/<name>test<\/name>/, `<name>${name}</name>${description ? `<description>${description}</description>` : ''}`)
    .replace(/\s*<uuid>[^<]*<\/uuid>/, '');
}

/** Calls a method with arguments its type declaration would not allow. */
function callRaw(target: object, method: string, ...args: unknown[]): unknown {
  const fn = Reflect.get(target, method) as (...a: unknown[]) => unknown;
  return Reflect.apply(fn, target, args);
}

describe(`the addon on ${URI}`, () => {
  let conn: Connection;
  before(async () => {
    conn = await libvirt.open(URI);
  });
  after(() => conn.close());

  test('getCapabilities is the XML virsh capabilities prints; getType and the versions as virsh version says', async () => {
    const caps = await conn.getCapabilities();
    assert.match(caps, /^<capabilities>/);
    assert.match(caps, /<domain type='test'\/>/);
    assert.equal(caps.trim(), (await virsh(['capabilities'], URI)).trim());
    const version = await virsh(['version'], URI);
    const [type, hv] = [await conn.getType(), await conn.getVersion()];
    // virsh: "Running hypervisor: TEST 0.0.2" from virConnectGetType and virConnectGetVersion.
    assert.match(version, new RegExp(`Running hypervisor: ${type} 0\\.0\\.${hv}\\n`));
    assert.equal(type, 'TEST');
  });

  test('getDomainCapabilities: the test driver refuses it with libvirt’s code; bad arguments are refused before libvirt', async () => {
    const err = assertLibvirtError(await rejection(conn.getDomainCapabilities(null, null, null, null)), 'VIR_ERR_NO_SUPPORT');
    assert.equal(err.domain, 'VIR_FROM_DOMAIN');
    assert.equal(err.codeNumber, libvirt.VIR_ERR_NO_SUPPORT);
    assert.match(err.message, /virConnectGetDomainCapabilities/);
    assert.throws(() => callRaw(conn, 'getDomainCapabilities', 42, null, null, null), TypeError);
    assert.throws(() => callRaw(conn, 'getDomainCapabilities', null, null, null, 'kvm', 1), /takes no flags/);
  });

  test('defineXML defines a shut-off persistent domain, a second define replaces its definition, createWithFlags starts it', async () => {
    const name = uniqueName('define');
    const dom = await conn.defineXML(await newDefinition(conn, name), VALIDATE);
    assert.ok(dom instanceof libvirt.Domain);
    assert.equal(dom.name(), name);
    assert.equal((await dom.state())[0], SHUTOFF);
    assert.equal((await conn.lookupByName(name)).UUIDString(), dom.UUIDString());

    const current = await dom.XMLDesc(INACTIVE | SECURE);
    const again = await conn.defineXML(current.replace('</name>', '</name><description>redefined by 15-host-definition</description>'), 0);
    assert.equal(again.UUIDString(), dom.UUIDString(), 'the same domain, not a new one');
    assert.match(await dom.XMLDesc(INACTIVE), /<description>redefined by 15-host-definition<\/description>/);

    assert.equal(await dom.createWithFlags(0), 0);
    assert.equal((await dom.state())[0], RUNNING);
    // The test driver's word for it (QEMU's says VIR_ERR_OPERATION_INVALID).
    assert.match(assertLibvirtError(await rejection(dom.createWithFlags(0)), 'VIR_ERR_INTERNAL_ERROR').message, /is already running/);
    await dom.destroy();
    assert.equal((await dom.state())[0], SHUTOFF, 'destroyed, a persistent domain stays defined');
    assertLibvirtError(await rejection(dom.createWithFlags(START_PAUSED)), 'VIR_ERR_INVALID_ARG');
  });

  test('defineXML and createWithFlags: libvirt’s refusals keep its code; unknown flag bits are a RangeError', async () => {
    assertLibvirtError(await rejection(conn.defineXML('<domain/>')), 'VIR_ERR_NO_NAME');
    assertLibvirtError(await rejection(conn.defineXML('not xml')), 'VIR_ERR_XML_DETAIL');
    assert.throws(() => callRaw(conn, 'defineXML', ''), TypeError);
    assert.throws(() => callRaw(conn, 'defineXML', '<domain/>', 0x80000000), RangeError);
    const dom = await conn.lookupByName('test');
    assert.throws(() => callRaw(dom, 'createWithFlags', 0x80000000), RangeError);
  });

  test('a read-only connection may not define, nor read the secure XML', async () => {
    const ro = await libvirt.openReadOnly(URI);
    try {
      const dom = await ro.lookupByName('test');
      assertLibvirtError(await rejection(dom.XMLDesc(INACTIVE | SECURE)), 'VIR_ERR_OPERATION_DENIED');
      assert.match(await dom.XMLDesc(INACTIVE), /<name>test<\/name>/);
      assertLibvirtError(await rejection(ro.defineXML(await newDefinition(conn, uniqueName('ro')))), 'VIR_ERR_OPERATION_DENIED');
    } finally {
      await ro.close();
    }
  });

  describe('snapshots', () => {
    let dom: Domain;
    before(async () => {
      dom = await conn.defineXML(await newDefinition(conn, uniqueName('snapshots')));
    });

    test('listAllSnapshots: each snapshot’s name with its XML; the list flags filter; lookup by name then delete', async () => {
      assert.deepEqual(await dom.listAllSnapshots(), []);
      await dom.snapshotCreateXML('<domainsnapshot><name>root</name><description>first</description></domainsnapshot>');
      await dom.snapshotCreateXML('<domainsnapshot><name>leaf</name></domainsnapshot>');

      const all = await dom.listAllSnapshots(0, SECURE);
      assert.deepEqual(all.map((s) => s.name).sort(), ['leaf', 'root']);
      for (const s of all) {
        assert.match(s.xml, new RegExp(`<name>${s.name}</name>`));
        // The same text a handle's getXMLDesc gives.
        assert.equal(s.xml, await (await dom.snapshotLookupByName(s.name)).getXMLDesc(SECURE));
      }
      assert.match(all.find((s) => s.name === 'leaf')?.xml ?? '', /<parent>\s*<name>root<\/name>/);
      assert.deepEqual((await dom.listAllSnapshots(LIST_ROOTS)).map((s) => s.name), ['root']);
      assert.deepEqual((await dom.listAllSnapshots(LIST_LEAVES)).map((s) => s.name), ['leaf']);

      const root = await dom.snapshotLookupByName('root');
      assert.ok(root instanceof libvirt.DomainSnapshot);
      assert.equal(root.getName(), 'root');
      assert.equal(await root.delete(DELETE_CHILDREN), 0);
      assert.deepEqual(await dom.listAllSnapshots(), []);
      assertLibvirtError(await rejection(dom.snapshotLookupByName('root')), 'VIR_ERR_NO_DOMAIN_SNAPSHOT');
    });

    test('listAllSnapshots and snapshotLookupByName refuse bad arguments before libvirt', () => {
      assert.throws(() => callRaw(dom, 'listAllSnapshots', 0x80000000), RangeError);
      assert.throws(() => callRaw(dom, 'listAllSnapshots', 0, 0x80000000), RangeError);
      assert.throws(() => callRaw(dom, 'snapshotLookupByName', ''), TypeError);
      assert.throws(() => callRaw(dom, 'snapshotLookupByName', 'x', 1), /takes no flags/);
    });
  });

  test('blockResize: the test driver refuses it with libvirt’s code; size and flags are checked before libvirt', async () => {
    const dom = await conn.lookupByName('test');
    const err = assertLibvirtError(await rejection(dom.blockResize('vda', 64 * 1024 * 1024, RESIZE_BYTES)), 'VIR_ERR_NO_SUPPORT');
    assert.equal(err.domain, 'VIR_FROM_DOMAIN');
    assert.match(err.message, /virDomainBlockResize/);
    assert.throws(() => callRaw(dom, 'blockResize', 'vda'), /size is required/);
    assert.throws(() => callRaw(dom, 'blockResize', 'vda', -1), RangeError);
    assert.throws(() => callRaw(dom, 'blockResize', 'vda', 1, 0x80000000), RangeError);
  });

  test('calls on a closed connection reject with VIR_ERR_INVALID_CONN or VIR_ERR_INVALID_DOMAIN', async () => {
    const other = await libvirt.open(URI);
    const dom = await other.lookupByName('test');
    await other.close();
    assertLibvirtError(await rejection(other.getCapabilities()), 'VIR_ERR_INVALID_CONN');
    assertLibvirtError(await rejection(other.defineXML('<domain/>')), 'VIR_ERR_INVALID_CONN');
    assertLibvirtError(await rejection(dom.listAllSnapshots()), 'VIR_ERR_INVALID_DOMAIN');
    assertLibvirtError(await rejection(dom.createWithFlags()), 'VIR_ERR_INVALID_DOMAIN');
  });
});

describe(`the facade on ${URI}`, () => {
  let conn: LibvirtConnection;
  before(async () => {
    conn = await LibvirtConnection.open(URI);
  });
  after(() => conn.close());

  test('versions as virsh version prints them; the capabilities XML', async () => {
    const v = await conn.versions();
    const text = await virsh(['version'], URI);
    assert.match(text, new RegExp(`Using library: libvirt ${v.libvirt.replaceAll('.', '\\.')}\\n`));
    assert.match(text, new RegExp(`Running hypervisor: ${v.hypervisorName} ${(v.hypervisor ?? '').replaceAll('.', '\\.')}\\n`));
    assert.match(await conn.getCapabilities(), /<domain type='test'\/>/);
    assert.equal(libvirtCode(await rejection(conn.getDomainCapabilities(null, null, null, 'test'))), 'VIR_ERR_NO_SUPPORT');
  });

  test('the inactive secure XML, defined again under a new name, makes a domain that starts', async () => {
    const xml = await conn.domainXml('test', { inactive: true, secure: true });
    const name = uniqueName('facade');
    const defined = await conn.defineXML(xml.replace('<name>test</name>', `<name>${name}</name>`).replace(/\s*<uuid>[^<]*<\/uuid>/, ''), { validate: true });
    assert.equal(defined, name);
    assert.equal(await conn.domainState(name), 'shutoff');
    await conn.domainCreate(name);
    assert.equal(await conn.domainState(name), 'running');
  });

  test('snapshots by name: create, list with XML, delete; a missing one keeps libvirt’s code', async () => {
    assert.equal(await conn.snapshotCreateXML('test', '<domainsnapshot><name>facade-snap</name></domainsnapshot>'), 'facade-snap');
    const listed = await conn.listAllSnapshots('test', { secure: true });
    assert.deepEqual(listed.map((s) => s.name), ['facade-snap']);
    assert.match(listed[0]?.xml ?? '', /<domain type='test'>/);
    await conn.snapshotDelete('test', 'facade-snap');
    assert.deepEqual(await conn.listAllSnapshots('test'), []);
    assert.equal(libvirtCode(await rejection(conn.snapshotDelete('test', 'facade-snap'))), 'VIR_ERR_NO_DOMAIN_SNAPSHOT');
  });

  test('blockResize passes bytes; the test driver’s refusal keeps libvirt’s code', async () => {
    assert.equal(libvirtCode(await rejection(conn.blockResize('test', 'vda', 1024 * 1024))), 'VIR_ERR_NO_SUPPORT');
  });
});
