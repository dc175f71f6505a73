// The chain check of a deep chain: 50 qcow2 layers of 1 GiB virtual size each, every layer written
// in part (--data MiB of its own pattern at its own offset, so `qemu-img check` has L2 and
// refcount tables to walk in each), under a running lab domain, checked through the core
// (`chain.check`, as the window asks it: `qemu-img info` and `qemu-img check -U` per layer, two at
// a time, plus stat/statfs). The first round is cold (qemu-img's pages and the images not yet in
// the page cache); then --rounds more.
//
//   node --import tsx bench/chain-check.mts [--layers 50] [--data 4] [--rounds 5] [--json FILE]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCore, defaultHostId } from '../src/main/core/api/core.ts';
import { GiB, makeTraversable, MiB, runTool } from '../src/main/core/lab/images.ts';
import { labDomainXml } from '../src/main/core/lab/lab-domain-xml.ts';
import { LAB_MARKER, removeLabDir } from '../src/main/core/lab/lab.ts';
import type { ChainCheck } from '../src/shared/health.ts';
import { LAB_ROOT, libvirt, sweepStaleLabDomains, TEST_URI, uniqueLabName } from '../test/lab/harness.ts';
import { load, median, writeResult, type Figure } from './lib/report.mts';

const { values: opts } = parseArgs({
  options: {
    layers: { type: 'string', default: '50' },
    data: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '5' },
    json: { type: 'string' },
  },
});
const LAYERS = Number(opts.layers);
const DATA_MIB = Number(opts.data);
const ROUNDS = Number(opts.rounds);
const VIR_DOMAIN_START_AUTODESTROY = 2;

async function buildChain(dir: string): Promise<string[]> {
  const layers: string[] = [];
  for (let i = 0; i < LAYERS; i++) {
    const path = join(dir, `layer-${String(i).padStart(2, '0')}.qcow2`);
    const backing = layers.at(-1);
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', ...(backing ? ['-b', backing, '-F', 'qcow2'] : []), path, String(GiB)]);
    // Each layer's data at its own offset, spread over the disk so each has L2 tables of its own.
    const offset = Math.floor((i * (GiB - DATA_MIB * MiB)) / LAYERS / MiB) * MiB;
    await runTool('qemu-io', ['-f', 'qcow2', '-c', `write -P ${(i % 250) + 1} ${offset} ${DATA_MIB}M`, path]);
    layers.push(path);
  }
  return layers;
}

async function main(): Promise<void> {
  const loadBefore = load();
  console.log(`chain-check: ${LAYERS} layers of 1 GiB virtual, ${DATA_MIB} MiB written in each, ${ROUNDS} rounds after a cold one; load ${loadBefore.join(' ')}`);
  await sweepStaleLabDomains(TEST_URI);
  const name = uniqueLabName('bench-chaincheck');
  const dir = join(LAB_ROOT, name);
  await makeTraversable(LAB_ROOT);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, LAB_MARKER), `${name}\n`);
  const conn = await libvirt.open(TEST_URI);
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-chaincheck-'));
  const core = await createCore({ uri: TEST_URI, dataDir, labRoot: null });
  try {
    const built = performance.now();
    const layers = await buildChain(dir);
    const buildMs = performance.now() - built;
    await conn.createXML(labDomainXml({ name, diskPath: layers.at(-1)!, labDir: dir }), VIR_DOMAIN_START_AUTODESTROY);
    await core.dispatcher.handle('host.capabilities', { hostId: defaultHostId });
    const rounds: { wallMs: number; tookMs: number; layers: number; findings: number }[] = [];
    for (let r = 0; r <= ROUNDS; r++) {
      const t0 = performance.now();
      const reply = await core.dispatcher.handle('chain.check', { hostId: defaultHostId, domain: name, disk: 'vda' });
      const wallMs = performance.now() - t0;
      if (!reply.ok) throw new Error(`chain.check failed: ${reply.error.message}`);
      const check = reply.result as ChainCheck;
      const corrupt = check.layers.filter((l) => (l.corruptions ?? 0) > 0).length;
      if (check.layers.length !== LAYERS || corrupt > 0) throw new Error(`the check saw ${check.layers.length} layers, ${corrupt} corrupt`);
      rounds.push({ wallMs, tookMs: check.tookMs, layers: check.layers.length, findings: check.layers.reduce((n, l) => n + l.findings.length, 0) });
      console.log(`  round ${r}${r === 0 ? ' (cold)' : ''}: ${wallMs.toFixed(0)} ms`);
    }
    const warm = rounds.slice(1).map((x) => x.wallMs);
    const figures: Figure[] = [
      {
        what: `chain.check of a ${LAYERS}-deep chain of 1 GiB layers (${DATA_MIB} MiB written in each), running domain, warm`,
        value: median(warm) / 1000,
        unit: 's median',
        spread: `min ${(Math.min(...warm) / 1000).toFixed(2)}, max ${(Math.max(...warm) / 1000).toFixed(2)} s over ${warm.length} rounds`,
        against: `${(median(warm) / LAYERS).toFixed(0)} ms a layer (qemu-img info and check -U, two at a time)`,
      },
      { what: 'the same, cold (first check after the chain was written)', value: (rounds[0]?.wallMs ?? NaN) / 1000, unit: 's' },
    ];
    await writeResult(opts.json, {
      name: 'chaincheck',
      method: `bench/chain-check.mts: ${LAYERS} qcow2 layers made with qemu-img create (1 GiB virtual) and qemu-io (${DATA_MIB} MiB each at its own offset) in ${(buildMs / 1000).toFixed(1)} s, a lab domain on the chain, chain.check through the core's dispatcher`,
      loadBefore,
      loadAfter: load(),
      figures,
      notes: [],
      detail: { rounds, buildMs },
    });
  } finally {
    await core.close();
    await conn
      .lookupByName(name)
      .then((d) => d.destroy())
      .catch(() => undefined);
    await conn.close();
    await removeLabDir(dir);
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
