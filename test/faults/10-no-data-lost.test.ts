// No byte lost in the normal case: for every operation, what the guest sees on the disk after the
// job (read through the resulting chain once QEMU has flushed and closed it) is byte for byte what
// it saw before, compared with qemu-img compare against a raw copy of the chain taken first; the
// lab's known patterns are all still there; and every image in the lab passes qemu-img check.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import type { Params } from '../../src/shared/contract.ts';
import { engineSuite, layerIndexes, liveChain, MiB, paths, previewAndStart, waitForEnd } from '../core/engine-harness.ts';
import { findMissingWrites } from '../lab/image-checks.ts';
import type { TestLab } from '../lab/harness.ts';
import { checkImagesIn, compareWithRaw, snapshotToRaw, stopDomain } from './fault-harness.ts';

// Real data in every layer (8 MiB base, 2 MiB per overlay), each job over in about a second.
const chain = { virtualSize: 64 * MiB, baseDataBytes: 8 * MiB, overlayDataBytes: 2 * MiB } as const;

describe('no data lost: every operation keeps what the guest sees', { timeout: 180_000 }, () => {
  const t = engineSuite();
  let bytesCompared = 0;
  let imagesChecked = 0;
  after(() => console.log(`no-data-lost: ${bytesCompared / MiB} MiB compared byte for byte, ${imagesChecked} images passed qemu-img check`));

  /** The lab, and a raw copy of what its guest sees now. */
  async function labWithReference(ctx: TestContext, layers = 3): Promise<{ lab: TestLab; reference: string }> {
    const lab = await t.lab(ctx, { ...chain, layers });
    const reference = join(lab.dir, 'reference.raw');
    await snapshotToRaw(lab.layers.at(-1)!, reference);
    return { lab, reference };
  }

  /** After the job: the domain stopped, `image`'s chain equal to the reference, all images sound. */
  async function assertNothingLost(lab: TestLab, reference: string, images: readonly string[]): Promise<void> {
    await stopDomain(lab.name);
    for (const image of images) {
      assert.equal(await compareWithRaw(reference, image), null, `${image} reads as before`);
      assert.deepEqual(await findMissingWrites(image, lab.chain.writes), [], `${image} holds every layer's pattern`);
      bytesCompared += chain.virtualSize;
    }
    const { checked, failures } = await checkImagesIn(lab.dir);
    assert.deepEqual(failures, []);
    imagesChecked += checked.length;
  }

  async function run(lab: TestLab, operation: Params<'job.start'>['operation'], confirm: Params<'job.start'>['confirm'] = []): Promise<string[]> {
    const ref = { hostId, domain: lab.name, disk: 'vda' };
    const { preview, job } = await previewAndStart(t.client, ref, operation, { confirm });
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(lab.name), paths(preview.after));
    return paths(preview.after);
  }

  it('pull', async (ctx) => {
    const { lab, reference } = await labWithReference(ctx);
    const after = await run(lab, { kind: 'pull' });
    assert.equal(after.length, 1);
    await assertNothingLost(lab, reference, [after[0]!]);
  });

  it('pull down to a base layer', async (ctx) => {
    const { lab, reference } = await labWithReference(ctx, 4);
    const [, , lower] = await layerIndexes(t.client, hostId, lab.name);
    const after = await run(lab, { kind: 'pull', base: lower! });
    assert.equal(after.length, 3);
    await assertNothingLost(lab, reference, [after[0]!]);
  });

  it('inactive commit of a middle layer', async (ctx) => {
    const { lab, reference } = await labWithReference(ctx);
    const [, middle] = await layerIndexes(t.client, hostId, lab.name);
    const after = await run(lab, { kind: 'commit', top: middle! }, ['drop-layers']);
    assert.equal(after.length, 2);
    await assertNothingLost(lab, reference, [after[0]!]);
  });

  it('active commit with pivot', async (ctx) => {
    const { lab, reference } = await labWithReference(ctx);
    const after = await run(lab, { kind: 'commit', afterReady: 'pivot' }, ['drop-layers']);
    assert.deepEqual(after, [lab.layers[0]]);
    await assertNothingLost(lab, reference, after);
  });

  it('copy with pivot', async (ctx) => {
    const { lab, reference } = await labWithReference(ctx);
    const destination = join(lab.dir, 'copy.qcow2');
    const after = await run(lab, { kind: 'copy', destination, afterReady: 'pivot' });
    assert.deepEqual(after, [destination]);
    await assertNothingLost(lab, reference, after);
  });

  it('copy without pivot (keep): the disk stays on its chain, and the copy holds the same bytes', async (ctx) => {
    const { lab, reference } = await labWithReference(ctx);
    const destination = join(lab.dir, 'copy.qcow2');
    const after = await run(lab, { kind: 'copy', destination, afterReady: 'keep' });
    assert.deepEqual(after, [...lab.layers].reverse());
    await assertNothingLost(lab, reference, [lab.layers.at(-1)!, destination]);
  });

  it('snapshot', async (ctx) => {
    const { lab, reference } = await labWithReference(ctx);
    const destination = join(lab.dir, 'snap.qcow2');
    const disk = await t.client.call('disk.snapshot', { hostId, domain: lab.name, disk: 'vda', destination });
    assert.deepEqual(paths(disk.chain), [destination, ...[...lab.layers].reverse()]);
    await assertNothingLost(lab, reference, [destination]);
  });
});
