// QEMU's user for one domain comes from its own live <seclabel model='dac'> where it sets one, not
// from the host-wide base label: a real domain whose QEMU runs as 1234:1234 (a static DAC label,
// which libvirt 9.0 and QEMU 7.2 honour here) has its layers judged for that user.
import assert from 'node:assert/strict';
import { chown, chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { createBackingChain, makeTraversable } from '../../src/main/core/lab/images.ts';
import { labDomainXml } from '../../src/main/core/lab/lab-domain-xml.ts';
import { LAB_MARKER, removeLabDir } from '../../src/main/core/lab/lab.ts';
import { LAB_ROOT, uniqueLabName } from '../lab/harness.ts';
import { engineSuite, MiB, waitForDomainChanged } from './engine-harness.ts';

const VIR_DOMAIN_START_AUTODESTROY = 2;

describe("QEMU's user from the domain's own seclabel", { timeout: 120_000 }, () => {
  const t = engineSuite();
  before(() => t.client.call('host.capabilities', { hostId }));

  it('judges the layers for the user the domain runs QEMU as', async (ctx) => {
    const caps = await t.client.call('host.capabilities', { hostId });
    assert.ok(caps.qemuUser && caps.qemuUser.uid !== 1234, 'the host-wide user is another one');
    const name = uniqueLabName('seclabel');
    const dir = join(LAB_ROOT, name);
    await makeTraversable(LAB_ROOT);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, LAB_MARKER), `${name}\n`);
    ctx.after(() => removeLabDir(dir));
    const chain = await createBackingChain({ dir, layers: 2, virtualSize: 64 * MiB, baseDataBytes: MiB, overlayDataBytes: MiB });
    const xml = labDomainXml({ name, diskPath: chain.layers.at(-1)!, labDir: dir }).replace(
      '</domain>',
      "  <seclabel type='static' model='dac' relabel='yes'><label>+1234:+1234</label></seclabel>\n</domain>",
    );
    const domain = await t.conn.createXML(xml, VIR_DOMAIN_START_AUTODESTROY);
    ctx.after(() => domain.destroy().catch(() => undefined));
    await waitForDomainChanged(t, name);

    // The base, given to the host-wide user with no access for others: that user could read it, 1234 cannot.
    const base = chain.layers[0]!;
    await chown(base, caps.qemuUser.uid, caps.qemuUser.gid);
    await chmod(base, 0o600);
    const check = await t.client.call('chain.check', { hostId, domain: name, disk: 'vda' });
    assert.deepEqual({ uid: check.qemuUser?.uid, gid: check.qemuUser?.gid }, { uid: 1234, gid: 1234 });
    assert.match(check.qemuUser?.source ?? '', /the domain's live XML/);
    const baseCheck = check.layers.find((l) => l.path === base)!;
    assert.equal(baseCheck.access?.qemuCanRead, false, JSON.stringify(baseCheck.access));
    assert.ok(baseCheck.findings.some((f) => f.code === 'not-readable' && f.message.includes('1234:1234')), JSON.stringify(baseCheck.findings));

    // A commit into it is judged for the same user.
    await chmod(base, 0o400);
    const preview = await t.client.call('operation.preview', { hostId, domain: name, disk: 'vda', operation: { kind: 'commit' } });
    const denied = preview.preflight?.findings.find((f) => f.code === 'not-writable');
    assert.ok(denied, JSON.stringify(preview.preflight));
    assert.match(denied.message, /QEMU's user \(1234:1234\) cannot write/);
  });
});
