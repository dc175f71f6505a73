// domain.get serves a domain from the host's model (read once, kept while nothing says it
// changed): after a lifecycle change, a job's end with a pivot, and changes made with virsh that
// libvirt sends no event for, it must still answer what libvirt has now.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { diskOf, engineSuite, liveChain, paths, previewAndStart, smallChain, waitForDomainChanged, waitForEnd } from './engine-harness.ts';
import { uniqueLabName, virsh, waitFor } from '../lab/harness.ts';

describe('the host model behind domain.get', { timeout: 120_000 }, () => {
  const t = engineSuite({ labsTogether: true });
  const lab = (ctx: TestContext) => t.lab(ctx, smallChain);
  const state = async (domain: string) => (await t.client.call('domain.get', { hostId, domain })).state;
  const changedCount = (domain: string) => t.events.filter((e) => e.event === 'domain.changed' && (e.data as { domain: string }).domain === domain).length;

  it('shows a lifecycle change made with virsh once its event came', async (ctx) => {
    const l = await lab(ctx);
    await waitForDomainChanged(t, l.name);
    assert.equal(await state(l.name), 'running');
    assert.equal(await state(l.name), 'running', 'served again from the model');
    const before = changedCount(l.name);
    await virsh(['suspend', l.name]);
    await waitFor(() => changedCount(l.name) > before || undefined, { timeoutMs: 10_000, what: 'the suspend event' });
    assert.equal(await state(l.name), 'paused');
    const listed = await t.client.call('domains.list', { hostId });
    assert.equal(listed.find((d) => d.name === l.name)?.state, 'paused', 'the listing too');
    await virsh(['resume', l.name]);
  });

  it('shows the chain a job left once its end is told, pivot included', async (ctx) => {
    const l = await lab(ctx);
    await waitForDomainChanged(t, l.name);
    const ref = { hostId, domain: l.name, disk: 'vda' };
    assert.deepEqual(paths((await diskOf(t.client, hostId, l.name)).chain), [...l.layers].reverse());
    const { preview, job } = await previewAndStart(t.client, ref, { kind: 'commit', afterReady: 'pivot' }, { confirm: ['drop-layers'] });
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    // Read right after the end event: no sleep, and no other event waited for.
    assert.deepEqual(paths((await diskOf(t.client, hostId, l.name)).chain), paths(preview.after));
    assert.deepEqual(paths(preview.after), await liveChain(l.name));
  });

  it('sees an external snapshot made with virsh (no event) within the discovery interval, and says the domain changed', async (ctx) => {
    const l = await lab(ctx);
    await waitForDomainChanged(t, l.name);
    const chain = paths((await diskOf(t.client, hostId, l.name)).chain);
    const overlay = join(l.dir, 'virsh-overlay.qcow2');
    const before = changedCount(l.name);
    await virsh(['snapshot-create-as', l.name, '--disk-only', '--no-metadata', '--diskspec', `vda,file=${overlay}`]);
    const madeAt = Date.now();
    // The discovery sweeps every 500 ms while someone listens (the test's bridge does), and one
    // sweep can be under way: two intervals and the sweep's own time, on a loaded machine.
    await waitFor(() => changedCount(l.name) > before || undefined, { timeoutMs: 10_000, intervalMs: 10, what: 'domain.changed after the snapshot' });
    ctx.diagnostic(`domain.changed ${Date.now() - madeAt} ms after virsh returned`);
    assert.deepEqual(paths((await diskOf(t.client, hostId, l.name)).chain), [overlay, ...chain]);
  });

  it("shows no layer sizes while another program's backup runs on the domain, and shows them again after it", async (ctx) => {
    // Reading sizes makes libvirt list QEMU's block nodes, which QEMU 7.2 aborts over while a
    // backup starts; the domain view asks the domain's job first. A pull backup stays until aborted.
    const l = await lab(ctx);
    await waitForDomainChanged(t, l.name);
    const sized = async () => (await diskOf(t.client, hostId, l.name)).chain.map((layer) => layer.sizes?.capacity ?? null);
    assert.ok((await sized()).every((c) => c !== null && c > 0), 'sizes while no job runs');
    const socket = join(tmpdir(), `strata-nbd-${process.pid}-${Date.now() % 1_000_000}.sock`);
    const xml = join(l.dir, 'pull-backup.xml');
    await writeFile(
      xml,
      `<domainbackup mode='pull'><server transport='unix' socket='${socket}'/><disks><disk name='vda' type='file'><scratch file='${join(l.dir, 'scratch.qcow2')}'/></disk></disks></domainbackup>`,
    );
    await virsh(['backup-begin', l.name, xml]);
    ctx.after(() => virsh(['domjobabort', l.name]).catch(() => undefined));
    assert.deepEqual(await sized(), l.layers.map(() => null), 'no sizes while the backup runs');
    await virsh(['domjobabort', l.name]);
    await waitFor(async () => (await sized()).every((c) => c !== null) || undefined, { timeoutMs: 10_000, what: 'sizes after the backup' });
  });

  it('lists a domain defined with virsh, and forgets it once undefined', async (ctx) => {
    const name = uniqueLabName('defined');
    const xml = `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>`;
    const file = join(t.dataDir, `${name}.xml`);
    await writeFile(file, xml);
    await t.client.call('domains.list', { hostId });
    const before = changedCount(name);
    await virsh(['define', file]);
    ctx.after(() => virsh(['undefine', name]).catch(() => undefined));
    await waitFor(() => changedCount(name) > before || undefined, { timeoutMs: 10_000, what: 'the define event' });
    assert.equal((await t.client.call('domains.list', { hostId })).find((d) => d.name === name)?.state, 'shutoff');
    assert.equal(await state(name), 'shutoff');
    await virsh(['undefine', name]);
    await waitFor(() => changedCount(name) > before + 1 || undefined, { timeoutMs: 10_000, what: 'the undefine event' });
    assert.equal((await t.client.call('domains.list', { hostId })).find((d) => d.name === name), undefined);
  });
});
