// A shut-off domain's disk pulled, committed and copied from the window in Chromium against `npm
// run serve` and the real libvirtd: each job runs offline in qemu-storage-daemon, shows like any
// other (progress, slider, outcome), the slider changes a running one, and the definition and
// the images are checked with virsh and qemu-img afterwards.
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { definedSource } from '../../src/main/core/offline/domain-definition.ts';
import { waitFor } from '../lab/harness.ts';
import { assertChainClean, assertSameData, daemonsUnder, makeChain, MiB, sweepStaleDefinedDomains, useDefinedDomain, useLabDir, virsh } from '../offline/offline-harness.ts';
import { E2E } from './fixture.ts';

describe('a shut-off domain from the window', { timeout: 300_000 }, () => {
  const e2e = new E2E();
  const page = () => e2e.page;

  before(async () => {
    await sweepStaleDefinedDomains();
    await e2e.start();
  });

  after(() => e2e.stop());

  const definedPath = async (name: string): Promise<string | null> => definedSource(await virsh(['dumpxml', '--inactive', name]), 'vda').path;

  async function layersShown(name: string, count: number): Promise<void> {
    const items = page().getByRole('list', { name: `Backing chain of ${name}/vda`, exact: true }).getByRole('listitem');
    await waitFor(async () => (await items.count()) === count, { timeoutMs: 60_000, what: `the chain of ${name} to show ${count} layers` });
  }

  async function plan(name: string, verb: 'Pull' | 'Commit' | 'Copy') {
    const button = page().getByRole('button', { name: `${verb}… on ${name}/vda`, exact: true });
    await waitFor(() => button.isEnabled(), { timeoutMs: 30_000, what: `${verb}… to be offered` });
    await button.click();
    const dialog = e2e.dialog();
    await dialog.waitFor();
    await dialog.getByText(/Offline, through qemu-storage-daemon/).waitFor({ timeout: 30_000 });
    return dialog;
  }

  async function outcome(name: string, text: RegExp): Promise<void> {
    await page().getByRole('article', { name: `Disk ${name}/vda` }).getByText(text).first().waitFor({ timeout: 60_000 });
  }

  it('pulls down to the base, commits into it and copies it away, with the slider moved during the copy', async (t) => {
    const dir = await useLabDir(t, 'e2e-offline');
    const chain = await makeChain(dir, { writes: [[[0, 24 * MiB]], [[1 * MiB, 1 * MiB]], [[2 * MiB, 1 * MiB]]] });
    const [base, , active] = chain.layers as [string, string, string];
    const name = await useDefinedDomain(t, dir, active, 'e2e');

    await page().getByRole('button', { name: 'Refresh', exact: true }).click();
    await page().getByRole('list', { name: /^Domains on / }).getByRole('button', { name: new RegExp(name) }).click();
    await page().getByText(/Pull, Commit and Copy run offline on its images/).waitFor();
    await layersShown(name, 3);

    // Pull down to the base: the middle layer leaves the chain.
    let dialog = await plan(name, 'Pull');
    await dialog.getByRole('radio', { name: new RegExp(`Down to .*${basename(base)}`) }).check();
    await dialog.getByRole('button', { name: 'Start pull' }).click();
    await dialog.waitFor({ state: 'detached' });
    await outcome(name, /completed: .*definition rewritten/);
    await layersShown(name, 2);
    assert.deepEqual(await assertChainClean(active), [active, base]);
    await assertSameData(chain, active);

    // Commit the active layer into the base: the definition then names the base.
    dialog = await plan(name, 'Commit');
    await dialog.getByRole('checkbox', { name: /leaves the chain/ }).check();
    await dialog.getByRole('button', { name: 'Start commit' }).click();
    await dialog.waitFor({ state: 'detached' });
    await waitFor(async () => (await definedPath(name)) === base || undefined, { timeoutMs: 60_000, what: 'the definition to name the base' });
    await layersShown(name, 1);
    await assertSameData(chain, base);

    // Copy at 1 MiB/s; the slider lifts the limit while it runs.
    const destination = join(dir, 'moved.qcow2');
    dialog = await plan(name, 'Copy');
    await dialog.getByLabel('Destination on the host').fill(destination);
    await dialog.getByRole('radio', { name: /once the data is complete/ }).waitFor();
    const limit = dialog.getByRole('textbox', { name: /in MiB\/s/ });
    await limit.fill('1');
    await limit.press('Enter');
    await waitFor(() => dialog.getByRole('button', { name: 'Start copy' }).isEnabled(), { timeoutMs: 30_000, what: 'the preview of the copy' });
    await dialog.getByRole('button', { name: 'Start copy' }).click();
    await dialog.waitFor({ state: 'detached' });
    const label = `${name}/vda`;
    const bar = page().getByRole('progressbar', { name: `Copy on ${label}` });
    await bar.waitFor();
    await page().getByText(/offline, through qemu-storage-daemon · the definition switches once the data is complete/).waitFor();
    await page().getByText(/cannot start while this job holds its images/).waitFor();
    assert.equal(await page().getByRole('button', { name: `Pivot ${label} to the new image` }).count(), 0, 'no pivot offline');
    await waitFor(async () => Number((await bar.getAttribute('aria-valuenow')) ?? 0) > 0, { timeoutMs: 30_000, what: 'the copy to move' });
    assert.equal((await daemonsUnder(dir)).length, 1, 'one qemu-storage-daemon runs the job');
    // The picture shows the job with its measured rate, without the notices of the jobs before.
    const dismiss = page().getByRole('button', { name: /^Dismiss: / });
    while ((await dismiss.count()) > 0) await dismiss.first().click();
    await waitFor(async () => !/measuring/.test((await page().getByRole('article', { name: `Disk ${label}` }).textContent()) ?? '') || undefined, {
      timeoutMs: 30_000,
      what: 'a measured rate',
    });
    await page().getByRole('article', { name: `Disk ${label}` }).scrollIntoViewIfNeeded();
    await e2e.screenshot('offline-job');
    const slider = page().getByRole('textbox', { name: `Bandwidth limit for ${label}, in MiB/s (empty for no limit)` });
    await slider.fill('');
    await slider.press('Enter');
    await outcome(name, /completed: .*definition rewritten/);
    assert.equal(await definedPath(name), destination);
    assert.deepEqual(await assertChainClean(destination), [destination]);
    await assertSameData(chain, destination);
    assert.deepEqual(await daemonsUnder(dir), []);
    await layersShown(name, 1);
    assert.match((await page().getByRole('list', { name: `Backing chain of ${label}`, exact: true }).textContent()) ?? '', /moved\.qcow2/);
    assert.deepEqual(e2e.pageErrors, []);
  });
});
