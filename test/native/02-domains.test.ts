// Domains: listing, lookups and their errors on the test driver, then a real transient lab domain
// on libvirtd + QEMU (created with createXML on a 3-layer chain, then destroyed).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLabDomain, removeLabDomain } from '../../src/main/core/lab/lab.ts';
import { GiB } from '../../src/main/core/lab/images.ts';
import {
  diskChain,
  LAB_ROOT,
  libvirt,
  sweepStaleLabDomains,
  TEST_URI,
  uniqueLabName,
  useLabDomain,
  virsh,
  type Connection,
} from '../lab/harness.ts';

const { LibvirtError } = libvirt;

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<InstanceType<typeof LibvirtError>> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof LibvirtError, `expected a LibvirtError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected a rejection with ${code}`);
}

describe('domains of the test driver', () => {
  let conn: Connection;
  before(async () => {
    conn = await libvirt.open('test:///default');
  });
  after(() => conn.close());

  test('listAllDomains lists the running "test" domain, with and without flags', async () => {
    const all = await conn.listAllDomains();
    assert.deepEqual(
      all.map((d) => d.name()),
      ['test'],
    );
    const active = await conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    assert.deepEqual(
      active.map((d) => d.name()),
      ['test'],
    );
    assert.deepEqual(await conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_INACTIVE), []);
  });

  test('lookupByName and lookupByUUIDString find the same domain; state, info and XMLDesc describe it', async () => {
    const dom = await conn.lookupByName('test');
    const uuid = dom.UUIDString();
    assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const again = await conn.lookupByUUIDString(uuid);
    assert.equal(again.name(), 'test');
    const [state] = await dom.state();
    assert.equal(state, libvirt.VIR_DOMAIN_RUNNING);
    const info = await dom.info();
    assert.equal(info.state, libvirt.VIR_DOMAIN_RUNNING);
    assert.equal(info.nrVirtCpu, 2);
    assert.ok(info.maxMemKiB >= info.memoryKiB && info.memoryKiB > 0);
    const xml = await dom.XMLDesc();
    assert.match(xml, /<name>test<\/name>/);
    assert.match(xml, new RegExp(`<uuid>${uuid}</uuid>`));
  });

  test('a missing domain rejects with VIR_ERR_NO_DOMAIN', async () => {
    const err = await rejectsWithCode(conn.lookupByName('no-such-domain'), 'VIR_ERR_NO_DOMAIN');
    assert.equal(err.domain, 'VIR_FROM_TEST');
    await rejectsWithCode(conn.lookupByUUIDString('00000000-0000-0000-0000-000000000001'), 'VIR_ERR_NO_DOMAIN');
  });
});

describe(`a lab domain on ${TEST_URI}`, () => {
  let conn: Connection;
  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
  });
  after(() => conn.close());

  test('a missing domain rejects with VIR_ERR_NO_DOMAIN from the QEMU driver', async () => {
    const err = await rejectsWithCode(conn.lookupByName(uniqueLabName('never-made')), 'VIR_ERR_NO_DOMAIN');
    assert.equal(err.domain, 'VIR_FROM_QEMU');
  });

  test('createXML starts a transient domain on the 3-layer chain; destroy removes it', async (t) => {
    const lab = await useLabDomain(t, conn);
    assert.equal(lab.domain.name(), lab.name);
    assert.equal(lab.layers.length, 3);
    // [VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_BOOTED] (the addon exports no state reasons).
    assert.deepEqual(await lab.domain.state(), [libvirt.VIR_DOMAIN_RUNNING, 1]);

    const listed = await conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    assert.ok(
      listed.some((d) => d.name() === lab.name),
      'listAllDomains shows it',
    );
    const found = await conn.lookupByName(lab.name);
    assert.equal(found.UUIDString(), lab.domain.UUIDString());

    // The live XML shows the whole chain, active layer first, and our lab metadata.
    const xml = await lab.domain.XMLDesc();
    assert.deepEqual(diskChain(xml, 'vda'), [...lab.layers].reverse());
    assert.match(xml, new RegExp(`pid="${process.pid}"`));
    const block = await lab.domain.blockInfo('vda');
    assert.equal(block.capacity, GiB);

    // Transient: once destroyed, libvirt forgets it.
    assert.equal(await lab.domain.destroy(), 0);
    await rejectsWithCode(conn.lookupByName(lab.name), 'VIR_ERR_NO_DOMAIN');
    assert.doesNotMatch(await virsh(['list', '--all', '--name']), new RegExp(lab.name));
    // Destroying it again is refused (the handle outlives the domain).
    const again = await lab.domain.destroy().then(
      () => null,
      (err: unknown) => err,
    );
    assert.ok(again instanceof LibvirtError);
    assert.ok(['VIR_ERR_NO_DOMAIN', 'VIR_ERR_OPERATION_INVALID'].includes(again.code), again.code);

    // removeLabDomain copes with a domain that is already gone, and removes the images.
    await lab.dispose();
    assert.equal(existsSync(lab.dir), false);
  });

  test('createLabDomain leaves no images behind when libvirt refuses the domain', async (t) => {
    const first = await useLabDomain(t, conn, { baseDataBytes: 1024 * 1024, overlayDataBytes: 512 * 1024 });
    // Same name again: libvirt refuses a second domain of that name.
    const dir = join(LAB_ROOT, uniqueLabName('dup'));
    t.after(() => removeLabDomain(null, { name: 'unused', dir }));
    const err = await createLabDomain(conn, { name: first.name, dir, baseDataBytes: 1024 * 1024 }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof LibvirtError, `expected a LibvirtError, got ${String(err)}`);
    assert.match(err.message, /already exists/);
    assert.equal(existsSync(dir), false, 'the images directory it made is gone');
    // The first domain is untouched.
    assert.equal((await first.domain.state())[0], libvirt.VIR_DOMAIN_RUNNING);
  });
});
