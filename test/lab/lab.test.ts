// The lab module on its own (qemu-img and qemu-io, no libvirtd): chains with data where we say,
// domain XML that survives hostile names and paths, clear errors for missing tools and bad options.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { labDomainXml } from '../../src/main/core/lab/lab-domain-xml.ts';
import { escapeXml } from '../../src/main/libvirt/xml.ts';
import { createBackingChain, LabError, layerPattern, MiB, runTool } from '../../src/main/core/lab/images.ts';
import { findMissingWrites, readBackingChain } from './image-checks.ts';
import { LAB_MARKER, removeLabDir } from '../../src/main/core/lab/lab.ts';

async function labError(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(err instanceof LabError, `expected a LabError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (message) assert.match(err.message, message);
}

describe('domain XML', () => {
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' });

  test('escapeXml escapes the five XML specials', () => {
    assert.equal(escapeXml(`a&b<c>d"e'f`), 'a&amp;b&lt;c&gt;d&quot;e&apos;f');
  });

  test('a hostile name and path come back unchanged through an XML parser', () => {
    const name = `lab <&> "quoted" 'single' ünï`;
    const diskPath = `/tmp/dir with 'quotes' & "more" <here>/top.qcow2`;
    const xml = labDomainXml({ name, diskPath, labDir: '/tmp/a&b', ownerPid: 42 });
    const doc = parser.parse(xml) as {
      domain: {
        '@type': string;
        name: string;
        memory: { '#text': number; '@unit': string };
        vcpu: number;
        os: { type: { '@machine': string } };
        metadata: Record<string, Record<string, string>>;
        devices: Record<string, unknown> & { disk: { '@type': string; source: { '@file': string }; target: { '@dev': string; '@bus': string }; driver: { '@type': string } } };
      };
    };
    const d = doc.domain;
    assert.equal(d['@type'], 'qemu');
    assert.equal(d.name, name);
    assert.equal(d.memory['#text'], 64);
    assert.equal(d.memory['@unit'], 'MiB');
    assert.equal(d.vcpu, 1);
    assert.equal(d.os.type['@machine'], 'pc');
    assert.equal(d.devices.disk.source['@file'], diskPath);
    assert.equal(d.devices.disk.driver['@type'], 'qcow2');
    assert.deepEqual(d.devices.disk.target, { '@dev': 'vda', '@bus': 'virtio' });
    assert.equal(d.metadata['strata:lab']?.['@dir'], '/tmp/a&b');
    assert.equal(d.metadata['strata:lab']?.['@pid'], '42');
    // No network, no graphics.
    for (const absent of ['interface', 'graphics', 'video']) assert.ok(!(absent in d.devices), `no <${absent}>`);
  });

  test('names and paths XML or libvirt cannot carry are refused', () => {
    assert.throws(() => labDomainXml({ name: '', diskPath: '/x' }), TypeError);
    assert.throws(() => labDomainXml({ name: 'a/b', diskPath: '/x' }), RangeError);
    assert.throws(() => labDomainXml({ name: 'bell\u0007', diskPath: '/x' }), RangeError);
    assert.throws(() => labDomainXml({ name: 'lone \ud800', diskPath: '/x' }), RangeError);
    assert.throws(() => labDomainXml({ name: 'ok', diskPath: 'relative.qcow2' }), RangeError);
    assert.throws(() => labDomainXml({ name: 'ok', diskPath: '/x', target: "vda'/><x" }), RangeError);
    assert.throws(() => labDomainXml({ name: 'ok', diskPath: '/x', memoryMiB: 1.5 }), RangeError);
    // Valid surrogate pairs are fine.
    assert.match(labDomainXml({ name: 'emoji 🧪', diskPath: '/x' }), /emoji 🧪/);
  });
});

describe('backing chains', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'strata-lab-unit-'));
    // mkdtemp makes 0700: QEMU as libvirt-qemu could not get in (see the test below).
    await chmod(root, 0o711);
  });
  after(() => rm(root, { recursive: true, force: true }));

  test('three layers by default, each with its own data, readable through the chain', async () => {
    // A directory name a shell would mangle: tools get argument lists, never a command line.
    const dir = join(root, `chain with 'quotes' "and" $HOME ;`);
    const chain = await createBackingChain({ dir, baseDataBytes: 2 * MiB, overlayDataBytes: MiB });
    assert.equal(chain.layers.length, 3);
    assert.equal(chain.virtualSize, 1024 * MiB);
    const active = chain.layers[2] ?? '';
    assert.deepEqual(await readBackingChain(active), [...chain.layers].reverse());
    assert.deepEqual(
      chain.writes.map((w) => [w.layer, w.pattern, w.offset, w.length]),
      [
        [0, layerPattern(0), 0, 2 * MiB],
        [1, layerPattern(1), 2 * MiB, MiB],
        [2, layerPattern(2), 3 * MiB, MiB],
      ],
    );
    assert.equal(new Set(chain.writes.map((w) => w.pattern)).size, 3, 'distinct patterns');
    // Through the chain, the active layer shows every layer's data ...
    assert.deepEqual(await findMissingWrites(active, chain.writes), []);
    // ... while the base alone has only its own.
    const missingFromBase = await findMissingWrites(chain.layers[0] ?? '', chain.writes);
    assert.deepEqual(
      missingFromBase.map((w) => w.layer),
      [1, 2],
    );
    // QEMU, running as another user, must be able to reach the images.
    assert.equal((await stat(dir)).mode & 0o011, 0o011);
  });

  test('layer count, sizes and data amounts are options', async () => {
    const chain = await createBackingChain({
      dir: join(root, 'five'),
      layers: 5,
      virtualSize: 64 * MiB,
      baseDataBytes: MiB,
      overlayDataBytes: 512 * 1024,
    });
    assert.equal(chain.layers.length, 5);
    assert.equal((await readBackingChain(chain.layers[4] ?? '')).length, 5);
    assert.deepEqual(await findMissingWrites(chain.layers[4] ?? '', chain.writes), []);
  });

  test('a directory QEMU cannot reach (under a 0700 parent) is refused with the reason', async () => {
    const closed = join(root, 'closed');
    await mkdir(closed, { mode: 0o700 });
    await labError(createBackingChain({ dir: join(closed, 'lab') }), 'NOT_TRAVERSABLE', /closed is not searchable by other users \(mode 700\)/);
    await assert.rejects(stat(join(closed, 'lab')), /ENOENT/, 'nothing made');
  });

  test('bad options are refused before anything is made', async () => {
    await labError(createBackingChain({ dir: join(root, 'bad1'), layers: 0 }), 'BAD_OPTION', /layers/);
    await labError(createBackingChain({ dir: join(root, 'bad2'), virtualSize: 1000 }), 'BAD_OPTION', /virtualSize/);
    await labError(createBackingChain({ dir: join(root, 'bad3'), virtualSize: 4 * MiB, baseDataBytes: 8 * MiB }), 'BAD_OPTION', /does not fit/);
  });

  test('a missing qemu-img is named, with the package to install', async () => {
    const saved = process.env['PATH'];
    process.env['PATH'] = join(root, 'empty-bin');
    try {
      await labError(createBackingChain({ dir: join(root, 'no-tools') }), 'TOOL_MISSING', /qemu-img was not found.*qemu-utils/);
    } finally {
      process.env['PATH'] = saved;
    }
    await labError(runTool('qemu-img', ['info', join(root, 'no-such.qcow2')]), 'TOOL_FAILED', /qemu-img info/);
  });

  test('removeLabDir removes only directories that carry the lab marker', async () => {
    const foreign = join(root, 'not-a-lab');
    await mkdir(foreign);
    await writeFile(join(foreign, 'precious'), 'x');
    await labError(removeLabDir(foreign), 'NOT_A_LAB_DIR');
    assert.ok((await stat(join(foreign, 'precious'))).isFile());
    await writeFile(join(foreign, LAB_MARKER), 'lab');
    await removeLabDir(foreign);
    await assert.rejects(stat(foreign), /ENOENT/);
    await removeLabDir(foreign); // already gone: fine
  });
});
