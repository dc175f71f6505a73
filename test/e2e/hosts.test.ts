// Hosts, limits, the queue and the practice lab from the UI, in Chromium against `npm run serve`
// and the real libvirtd: an unreachable host says what to do, a second host comes and goes, a
// host's limit is set and cleared, a job waits in the queue behind its disk's running job and is
// cancelled there, and a practice lab is made
// and removed, each checked with virsh.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { sweepStaleLabDomains, virsh, virshBlockJobInfo, waitFor } from '../lab/harness.ts';
import { E2E, liveChain } from './fixture.ts';

describe('hosts, limits, the queue and the practice lab', { timeout: 300_000 }, () => {
  const e2e = new E2E();
  const page = () => e2e.page;
  let practiceLab: string | null = null;

  before(async () => {
    await sweepStaleLabDomains();
    await e2e.start();
  });

  after(async () => {
    // A failed run must not leave the practice lab behind: it is not autodestroyed.
    if (practiceLab && (await virsh(['list', '--name'])).split('\n').includes(practiceLab)) await virsh(['destroy', practiceLab]);
    await e2e.stop();
  });

  async function addHost(uri: string, label: string, readOnly = false) {
    await page().getByRole('button', { name: 'Add host…' }).click();
    const dialog = e2e.dialog();
    await dialog.getByRole('textbox', { name: 'libvirt URI' }).fill(uri);
    await dialog.getByRole('textbox', { name: /^Label/ }).fill(label);
    if (readOnly) await dialog.getByRole('checkbox', { name: /^Read-only/ }).check();
    await dialog.getByRole('button', { name: 'Add host' }).click();
    await dialog.waitFor({ state: 'detached' });
  }

  async function removeHost(label: string) {
    await page().getByRole('button', { name: `Remove host ${label}` }).click();
    await page().getByRole('button', { name: 'Yes, remove' }).click();
    await page().getByRole('button', { name: new RegExp(`^${label}\\s*,`) }).waitFor({ state: 'detached' });
  }

  it('adds a host whose daemon socket is missing, says what to do, and removes it', async () => {
    await addHost('qemu+unix:///system?socket=/run/strata-e2e-no-such.sock', 'Nowhere');
    await page().getByRole('button', { name: /^Nowhere\s*, Needs you$/ }).waitFor();
    await page().getByText(/libvirtd is not running here \(its socket \/run\/strata-e2e-no-such\.sock is missing\): start it/).waitFor();
    // Folded, the default host leaves room to see the unreachable one whole.
    const main = page().getByRole('button', { name: /, Connected$/ }).first();
    await main.click();
    await e2e.screenshot('host-unreachable');
    await main.click();
    await removeHost('Nowhere');
  });

  it('adds a read-only host, lists and filters its domains, and removes it', async () => {
    await addHost('test:///default', 'Test driver', true);
    const list = page().getByRole('list', { name: 'Domains on Test driver' });
    await list.getByRole('button', { name: /^test/ }).waitFor();
    const filter = page().getByRole('searchbox', { name: 'Filter domains' });
    await filter.fill('no-such-domain');
    await page().getByText('No domain matches “no-such-domain”.').first().waitFor();
    assert.equal(await list.getByRole('button').count(), 0);
    await filter.fill('');
    await list.getByRole('button', { name: /^test/ }).click();
    // A read-only connection watches: no operation can be planned.
    assert.equal(await page().getByRole('button', { name: /^Pull… on test\// }).first().isDisabled(), true);
    await removeHost('Test driver');
  });

  it('sets a host limit, shown beside the host, and clears it', async () => {
    const p = page();
    await p.getByRole('button', { name: /^Limits… of / }).first().click();
    await e2e.dialog().getByRole('textbox', { name: /^Jobs running at once/ }).fill('3');
    await e2e.dialog().getByRole('button', { name: 'Save limits' }).click();
    await e2e.dialog().waitFor({ state: 'detached' });
    await p.getByText('3 at once').waitFor();
    await p.getByRole('button', { name: /^Limits… of / }).first().click();
    await e2e.dialog().getByRole('textbox', { name: /^Jobs running at once/ }).fill('');
    await e2e.dialog().getByRole('button', { name: 'Save limits' }).click();
    await p.getByText('3 at once').waitFor({ state: 'detached' });
  });

  it('queues a job behind the one running on its disk and cancels it from the queue', async () => {
    const lab = await e2e.lab('queue', { baseDataBytes: 24 * 1024 * 1024 });
    const label = `${lab.name}/vda`;
    const p = page();
    await e2e.open(lab);
    await p.getByRole('button', { name: `Pull… on ${label}` }).click();
    await e2e.dialog().getByRole('textbox', { name: /in MiB\/s/ }).fill('1');
    await e2e.dialog().getByRole('textbox', { name: /in MiB\/s/ }).press('Enter');
    await e2e.dialog().getByRole('button', { name: 'Start pull' }).click();
    await p.getByRole('progressbar', { name: `Pull on ${label}` }).waitFor();

    await p.getByRole('button', { name: `Pull… on ${label}` }).click();
    assert.equal(await e2e.dialog().getByRole('radio', { name: 'Queue it' }).isChecked(), true);
    await e2e.dialog().getByRole('button', { name: 'Start pull' }).click();
    await p.getByText('Queued, place 1').waitFor();
    await p.getByRole('navigation', { name: 'Views' }).getByRole('button', { name: /^Jobs/ }).click();
    await p.getByRole('progressbar', { name: `Pull on ${label}` }).waitFor();
    await e2e.screenshot('jobs-running-and-queued');
    await p.getByRole('button', { name: `Cancel queued pull on ${label}` }).click();
    await p.getByText('Queued, place 1').waitFor({ state: 'detached' });
    await p.getByRole('table').getByText('removed from the queue before it started').waitFor();

    await p.getByRole('button', { name: `Abort pull on ${label}` }).click();
    await p.getByRole('button', { name: 'Yes, abort' }).click();
    await waitFor(async () => Object.keys(await virshBlockJobInfo(lab.name, 'vda')).length === 0, { timeoutMs: 20_000, what: 'the abort' });
    assert.equal((await liveChain(lab.name)).length, 3, 'neither job changed the chain');
    await p.getByRole('navigation', { name: 'Views' }).getByRole('button', { name: 'Hosts' }).click();
  });

  it('creates a practice lab and removes it', async () => {
    const p = page();
    await p.getByRole('button', { name: '+ Practice lab' }).first().click();
    const heading = p.getByRole('heading', { level: 2, name: /^strata-lab-\d+$/ });
    await heading.waitFor({ timeout: 60_000 });
    practiceLab = (await heading.textContent())!.trim();
    assert.equal((await virsh(['domstate', practiceLab])).trim(), 'running');
    const chain = await liveChain(practiceLab);
    assert.equal(chain.length, 3);
    await p.getByRole('button', { name: 'Remove practice lab' }).click();
    await p.getByRole('button', { name: 'Yes, remove' }).click();
    await heading.waitFor({ state: 'detached', timeout: 30_000 });
    assert.ok(!(await virsh(['list', '--all', '--name'])).split('\n').includes(practiceLab), 'the domain is gone');
    assert.ok(!existsSync(chain[0]!), 'its images are gone');
    assert.deepEqual(e2e.pageErrors, []);
  });
});
