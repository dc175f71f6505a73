// Snapshots, per-layer statistics, block info and write thresholds, checked against virsh and
// qemu-img:
// - an external disk-only snapshot (DISK_ONLY | NO_METADATA | ATOMIC) adds a layer on top of vda
//   and leaves an excluded second disk alone; a snapshot with metadata on test:///default;
// - getAllDomainStats(BLOCK, BACKING): every layer of the chain with the XML's index, qemu-img's
//   virtual and allocated sizes, as `virsh domstats --block --backing` shows them;
// - blockInfo: capacity is the virtual size;
// - setBlockThreshold: the BLOCK_THRESHOLD event for the active layer (crossed by a pull) and for
//   a backing layer named 'vda[N]' (crossed by a commit into it); bad disks refused.
import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { labDomainXml } from '../../src/main/core/lab/lab-domain-xml.ts';
import { createBackingChain, runTool } from '../../src/main/core/lab/images.ts';
import { readBackingChain } from '../lab/image-checks.ts';
import { LAB_MARKER, removeLabDomain } from '../../src/main/core/lab/lab.ts';
import {
  EventRecorder,
  LAB_ROOT,
  libvirt,
  suiteLabs,
  sweepStaleLabDomains,
  TEST_URI,
  uniqueLabName,
  virsh,
  type Connection,
  type Domain,
} from '../lab/harness.ts';
import {
  assertLibvirtError,
  indexOf,
  jobGone,
  liveLayers,
  MiB,
  qemuImgInfo,
  rejection,
  virshBlockStats,
  virshChain,
} from './block-helpers.ts';

const {
  VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY: DISK_ONLY,
  VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA: NO_METADATA,
  VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC: ATOMIC,
  VIR_DOMAIN_STATS_BLOCK: STATS_BLOCK,
  VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING: STATS_BACKING,
  VIR_DOMAIN_BLOCK_JOB_COMPLETED: COMPLETED,
  VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2: BLOCK_JOB_2,
  VIR_DOMAIN_EVENT_ID_BLOCK_THRESHOLD: BLOCK_THRESHOLD,
} = libvirt;

type Stats = Record<string, string | number | boolean | null>;

/** The stats record of one domain from getAllDomainStats; also checks the record's Domain. */
async function statsOf(conn: Connection, domain: Domain, flags: number): Promise<Stats> {
  const records = await conn.getAllDomainStats(STATS_BLOCK, flags);
  const mine = records.filter(([d]) => d.name() === domain.name());
  assert.equal(mine.length, 1, `one record for ${domain.name()}`);
  const [d, stats] = mine[0] ?? assert.fail('no record');
  assert.equal(d.UUIDString(), domain.UUIDString());
  return stats;
}

/**
 * A transient domain with two disks: vda on a 3-layer chain and vdb on a single image. The lab
 * domains have one disk and no ACPI, so a second disk cannot be hot-plugged ("Bus 'pci.0' does
 * not support hotplugging"); it is declared at creation instead.
 */
async function twoDiskDomain(t: TestContext, conn: Connection): Promise<{ name: string; dir: string; layers: string[]; vdb: string; domain: Domain }> {
  const name = uniqueLabName('two-disks');
  const dir = join(LAB_ROOT, name);
  t.after(() => removeLabDomain(conn, { name, dir }));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, LAB_MARKER), `${name}\n`);
  const chain = await createBackingChain({ dir, virtualSize: 64 * MiB, baseDataBytes: MiB, overlayDataBytes: MiB });
  const vdb = join(dir, 'vdb.qcow2');
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', vdb, String(16 * MiB)]);
  await chmod(vdb, 0o644);
  const active = chain.layers[chain.layers.length - 1] ?? assert.fail('no layers');
  const xml = labDomainXml({ name, diskPath: active, labDir: dir, ownerPid: process.pid }).replace(
    '<memballoon',
    `<disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${vdb}'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <memballoon`,
  );
  const domain = await conn.createXML(xml, libvirt.VIR_DOMAIN_START_AUTODESTROY);
  return { name, dir, layers: chain.layers, vdb, domain };
}

describe(`snapshots, stats and thresholds on ${TEST_URI}`, () => {
  const labs = suiteLabs();
  let conn: Connection;
  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
  });
  after(() => conn.close());

  test('an external disk-only snapshot (NO_METADATA, ATOMIC) puts a new layer on vda and leaves the excluded vdb alone', async (t) => {
    const lab = await twoDiskDomain(t, conn);
    const [l0, l1, l2] = lab.layers as [string, string, string];
    assert.deepEqual(await virshChain(lab.name, 'vda'), [l2, l1, l0]);
    assert.deepEqual(await virshChain(lab.name, 'vdb'), [lab.vdb]);

    const overlay = join(lab.dir, 'snap-overlay.qcow2');
    const xml = `<domainsnapshot>
  <name>strata-ext</name>
  <disks>
    <disk name='vda' snapshot='external'><driver type='qcow2'/><source file='${overlay}'/></disk>
    <disk name='vdb' snapshot='no'/>
  </disks>
</domainsnapshot>`;
    const snap = await lab.domain.snapshotCreateXML(xml, DISK_ONLY | NO_METADATA | ATOMIC);
    assert.ok(snap instanceof libvirt.DomainSnapshot);
    assert.equal(snap.getName(), 'strata-ext');

    // libvirt's view: one more layer on top of vda, vdb untouched.
    assert.deepEqual(await virshChain(lab.name, 'vda'), [overlay, l2, l1, l0]);
    assert.deepEqual(await virshChain(lab.name, 'vdb'), [lab.vdb]);
    const layers = liveLayers(await lab.domain.XMLDesc(), 'vda');
    assert.equal(layers.length, 4);
    assert.ok(indexOf(layers, overlay) > 0);
    assert.equal((await qemuImgInfo(overlay))['backing-filename'], l2);
    // The chain of the new image on disk, as qemu-img reads it.
    assert.deepEqual(await readBackingChain(overlay, { forceShare: true }), [overlay, l2, l1, l0]);

    // NO_METADATA: libvirt keeps no record of it.
    assert.equal((await virsh(['snapshot-list', lab.name, '--name'])).trim(), '');
    assertLibvirtError(await rejection(snap.getXMLDesc()), 'VIR_ERR_NO_DOMAIN_SNAPSHOT');
  });

  describe('on test:///default', () => {
    let testConn: Connection;
    before(async () => {
      testConn = await libvirt.open('test:///default');
    });
    after(() => testConn.close());

    test('a snapshot with metadata: getName, getXMLDesc, then delete; afterwards libvirt no longer knows it', async () => {
      const dom = await testConn.lookupByName('test');
      const snap = await dom.snapshotCreateXML(
        '<domainsnapshot><name>strata-meta</name><description>made by 09-snapshot-stats</description></domainsnapshot>',
      );
      assert.equal(snap.getName(), 'strata-meta');
      const xml = await snap.getXMLDesc();
      assert.match(xml, /<name>strata-meta<\/name>/);
      assert.match(xml, /<description>made by 09-snapshot-stats<\/description>/);
      assert.match(xml, /<state>running<\/state>/);
      assert.match(xml, /<domain type='test'>[\s\S]*<name>test<\/name>/);

      assert.equal(await snap.delete(), 0);
      assertLibvirtError(await rejection(snap.getXMLDesc()), 'VIR_ERR_NO_DOMAIN_SNAPSHOT');
      assertLibvirtError(await rejection(snap.delete()), 'VIR_ERR_NO_DOMAIN_SNAPSHOT');
    });

    // libvirt-api.xml gives VIR_DOMAIN_SNAPSHOT_XML_SECURE the value 'VIR_DOMAIN_XML_SECURE' (another
    // constant's name): the generated constants must include such members too.
    test(
      'getXMLDesc accepts VIR_DOMAIN_SNAPSHOT_XML_SECURE',
      async () => {
        const dom = await testConn.lookupByName('test');
        const snap = await dom.snapshotCreateXML('<domainsnapshot><name>strata-secure</name></domainsnapshot>');
        try {
          // VIR_DOMAIN_SNAPSHOT_XML_SECURE = VIR_DOMAIN_XML_SECURE = 1.
          assert.match(await snap.getXMLDesc(1), /<name>strata-secure<\/name>/);
          assert.equal(libvirt.constants['VIR_DOMAIN_SNAPSHOT_XML_SECURE'], 1, 'the constant is exported');
        } finally {
          await snap.delete();
        }
      },
    );

    // VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE and the other domain filters are defined in
    // libvirt-api.xml as VIR_CONNECT_LIST_DOMAINS_*: the same case.
    test(
      'getAllDomainStats accepts the domain filters (VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE)',
      async () => {
        // ACTIVE = VIR_CONNECT_LIST_DOMAINS_ACTIVE = 1.
        const records = await testConn.getAllDomainStats(STATS_BLOCK, 1);
        assert.deepEqual(
          records.map(([d]) => d.name()),
          ['test'],
        );
        assert.equal(libvirt.constants['VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE'], 1, 'the constant is exported');
      },
    );
  });

  test('getAllDomainStats(BLOCK, BACKING) lists every layer with its XML index and qemu-img sizes, as virsh domstats does', async (t) => {
    const lab = await labs.use(t, conn, { virtualSize: 96 * MiB, baseDataBytes: 4 * MiB, overlayDataBytes: MiB });
    const layers = liveLayers(await lab.domain.XMLDesc());
    assert.deepEqual(
      layers.map((l) => l.file),
      lab.layers.toReversed(),
    );

    const stats = await statsOf(conn, lab.domain, STATS_BACKING);
    const v = await virshBlockStats(lab.name);
    assert.equal(stats['block.count'], layers.length);
    assert.equal(v['block.count'], String(layers.length));
    for (const layer of layers) {
      const keys = Object.keys(stats).filter((k) => /^block\.\d+\.path$/.test(k) && stats[k] === layer.file);
      assert.equal(keys.length, 1, `one stats entry for ${layer.file}`);
      const n = (keys[0] ?? '').split('.')[1];
      const at = (field: string): Stats[string] | undefined => stats[`block.${n}.${field}`];
      const img = await qemuImgInfo(layer.file);
      assert.equal(at('name'), 'vda');
      assert.equal(at('backingIndex'), layer.index, `backingIndex of ${layer.file}`);
      assert.equal(at('capacity'), img['virtual-size']);
      assert.equal(at('capacity'), 96 * MiB);
      // physical is what the file takes on disk, as qemu-img's actual-size.
      assert.equal(at('physical'), img['actual-size'], `physical of ${layer.file}`);
      assert.equal(typeof at('allocation'), 'number');
      // virsh, asked separately, reports the same numbers for the same index.
      for (const field of ['name', 'path', 'backingIndex', 'capacity', 'physical', 'allocation']) {
        assert.equal(v[`block.${n}.${field}`], String(at(field)), `block.${n}.${field}`);
      }
    }
    // The base holds the most data.
    const basePhysical = Number(stats[`block.${layers.length - 1}.physical`]);
    assert.ok(basePhysical > 4 * MiB, `base physical ${basePhysical}`);

    // Without BACKING: the active layer only.
    const top = await statsOf(conn, lab.domain, 0);
    assert.equal(top['block.count'], 1);
    assert.equal(top['block.0.path'], layers[0]?.file);
    assert.equal(top['block.0.backingIndex'], 1, 'the active layer keeps its index');
    assert.equal(top['block.1.path'], undefined);
  });

  test('blockInfo: capacity is the virtual size; allocation and physical as virsh domblkinfo', async (t) => {
    const lab = await labs.use(t, conn, { virtualSize: 80 * MiB, baseDataBytes: MiB, overlayDataBytes: MiB });
    const active = lab.layers[2] ?? assert.fail('no active layer');
    const info = await lab.domain.blockInfo('vda');
    assert.equal(info.capacity, (await qemuImgInfo(active))['virtual-size']);
    assert.equal(info.capacity, 80 * MiB);
    const v = await virsh(['domblkinfo', lab.name, 'vda']);
    assert.match(v, new RegExp(`Capacity:\\s+${info.capacity}\\n`));
    assert.match(v, new RegExp(`Allocation:\\s+${info.allocation}\\n`));
    assert.match(v, new RegExp(`Physical:\\s+${info.physical}\\n`));
    assert.ok(info.allocation > 0 && info.physical >= info.allocation, JSON.stringify(info));
    assertLibvirtError(await rejection(lab.domain.blockInfo('vdz')), 'VIR_ERR_INVALID_ARG');
  });

  test("setBlockThreshold: BLOCK_THRESHOLD for a backing layer 'vda[N]' (crossed by a commit) and for the active layer (crossed by a pull)", async (t) => {
    const lab = await labs.use(t, conn, { virtualSize: 64 * MiB, baseDataBytes: MiB, overlayDataBytes: 4 * MiB });
    const [l0, l1, l2] = lab.layers as [string, string, string];
    const thresholds = await EventRecorder.register(conn, lab.domain, BLOCK_THRESHOLD);
    const jobs = await EventRecorder.register(conn, lab.domain, BLOCK_JOB_2);
    t.after(() => thresholds.dispose());
    t.after(() => jobs.dispose());

    // Refusals first: a disk or layer the domain does not have.
    assertLibvirtError(await rejection(lab.domain.setBlockThreshold('vdz', MiB)), 'VIR_ERR_INVALID_ARG');
    assertLibvirtError(await rejection(lab.domain.setBlockThreshold('vda[9]', MiB)), 'VIR_ERR_INVALID_ARG');

    // 1. The base, by index, just above its size: committing layer 1's 4 MiB into it crosses it.
    const layers = liveLayers(await lab.domain.XMLDesc());
    const baseIndex = indexOf(layers, l0);
    const stats = await statsOf(conn, lab.domain, STATS_BACKING);
    const baseSlot = Object.keys(stats).find((k) => stats[k] === l0)?.split('.')[1];
    const basePhysical = Number(stats[`block.${baseSlot}.physical`]);
    const baseThreshold = basePhysical + 512 * 1024;
    assert.equal(await lab.domain.setBlockThreshold(`vda[${baseIndex}]`, baseThreshold), 0);
    assert.equal((await virshBlockStats(lab.name))[`block.${baseSlot}.threshold`], String(baseThreshold), 'virsh sees the threshold');

    await lab.domain.blockCommit('vda', `vda[${baseIndex}]`, `vda[${indexOf(layers, l1)}]`, 0, 0);
    const onBase = await thresholds.waitFor(() => true, 30_000, 'BLOCK_THRESHOLD on the base');
    assert.equal(onBase.dev, `vda[${baseIndex}]`);
    assert.equal(onBase.path, l0);
    assert.equal(onBase.threshold, baseThreshold);
    assert.ok(onBase.excess > 0, `excess ${onBase.excess}`);
    assert.equal(onBase.domainName, lab.name);
    const committed = await jobs.waitFor(() => true, 30_000, 'the commit to end');
    assert.equal(committed.status, COMPLETED, JSON.stringify(committed));
    await jobGone(t, lab.domain, 'the commit');
    assert.deepEqual(await virshChain(lab.name), [l2, l0]);

    // 2. The active layer, by target name: a pull writes the base's and layer 1's data into it.
    const activePhysical = Number((await statsOf(conn, lab.domain, 0))['block.0.physical']);
    const activeThreshold = activePhysical + MiB;
    assert.equal(await lab.domain.setBlockThreshold('vda', activeThreshold), 0);
    assert.equal((await virshBlockStats(lab.name))['block.0.threshold'], String(activeThreshold));
    const activeIndex = indexOf(liveLayers(await lab.domain.XMLDesc()), l2);
    await lab.domain.blockPull('vda', 0, 0);
    const onActive = await thresholds.waitFor((e) => e.dev === 'vda', 30_000, 'BLOCK_THRESHOLD on vda');
    assert.equal(onActive.path, l2);
    assert.equal(onActive.threshold, activeThreshold);
    assert.ok(onActive.excess > 0, `excess ${onActive.excess}`);
    // For the active layer libvirt 9.0 sends the event twice: named 'vda' and 'vda[N]'.
    const indexed = await thresholds.waitFor((e) => e.dev === `vda[${activeIndex}]`, 5_000, `BLOCK_THRESHOLD on vda[${activeIndex}]`);
    assert.deepEqual([indexed.path, indexed.threshold, indexed.excess], [l2, activeThreshold, onActive.excess]);
    await jobs.waitFor((e) => e !== committed, 30_000, 'the pull to end');
    await jobGone(t, lab.domain, 'the pull');

    // A threshold fires once: libvirt then clears it.
    assert.equal((await virshBlockStats(lab.name))['block.0.threshold'], undefined);
    assert.deepEqual(
      thresholds.events.map((e) => e.dev),
      [`vda[${baseIndex}]`, 'vda', `vda[${activeIndex}]`],
    );
  });
});
