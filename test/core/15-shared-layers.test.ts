// A base image that backs several domains: an operation that writes into it or deletes it changes
// what the other guests read, so the preview names them and the start needs its own confirmation.
// Two real domains on one base, against libvirtd + QEMU (backing layers are opened read-only, so
// both run at once).
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { runTool } from '../../src/main/core/lab/images.ts';
import { labDomainXml } from '../../src/main/core/lab/lab-domain-xml.ts';
import { engineSuite, layerIndexes, liveChain, rejection, smallChain } from './engine-harness.ts';
import { libvirt, uniqueLabName, virsh } from '../lab/harness.ts';

describe('shared layers: other domains on the same base', { timeout: 120_000 }, () => {
  const t = engineSuite();

  it('a commit into a shared base names the other domain and is refused without shared-layers', async (ctx) => {
    const lab = await t.lab(ctx, smallChain);
    const base = lab.layers[0]!;
    const sibling = uniqueLabName('sibling');
    const overlay = join(lab.dir, `${sibling}.qcow2`);
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay]);
    await t.conn.createXML(labDomainXml({ name: sibling, diskPath: overlay }), libvirt.VIR_DOMAIN_START_AUTODESTROY);
    ctx.after(async () => {
      await virsh(['destroy', sibling]).catch(() => undefined);
      await rm(overlay, { force: true });
    });
    // The engine learns of the sibling as users do: by reading it (the domain list, a lifecycle event).
    await t.client.call('domain.get', { hostId, domain: sibling });

    const ref = { hostId, domain: lab.name, disk: 'vda' };
    const [, middle, baseIndex] = await layerIndexes(t.client, hostId, lab.name);
    const operation = { kind: 'commit' as const, top: middle!, base: baseIndex! };
    const preview = await t.client.call('operation.preview', { ...ref, operation });
    assert.deepEqual(preview.sharedWith, [{ domain: sibling, paths: [base], effect: 'written' }]);
    assert.ok(preview.needs.includes('shared-layers'), `needs: ${preview.needs.join(', ')}`);
    assert.ok(preview.bytesToMove !== null && preview.bytesToMove > 0, `bytesToMove: ${preview.bytesToMove}`);

    const before = await liveChain(lab.name);
    const refused = await rejection(t.client.call('job.start', { ...ref, operation, confirm: ['drop-layers'] }));
    assert.equal(refused.kind, 'conflict');
    assert.match(refused.message, new RegExp(`other domains use layers this changes \\(${sibling}: ${base}\\)`));
    assert.deepEqual(await liveChain(lab.name), before, 'nothing ran');

    // A pull writes only the domain's own active layer: nobody else is touched.
    const pull = await t.client.call('operation.preview', { ...ref, operation: { kind: 'pull' } });
    assert.deepEqual(pull.sharedWith, []);
    assert.ok(!pull.needs.includes('shared-layers'));
  });
});
