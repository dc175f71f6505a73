// Run as an ordinary user (never root) against that user's own qemu:///session, by
// test/session/20-as-user.test.ts: the practice lab under the user's private data folder, a pull,
// an active commit with pivot, a copy with pivot whose new image holds the guest's data, and
// qemu:///system refused for lack of rights, named by kind with its fix.
import assert from 'node:assert/strict';
import { mkdtemp, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { defaultHostId as hostId } from '../../../src/main/core/api/core.ts';
import { LibvirtConnection } from '../../../src/main/libvirt/connection.ts';
import { engineSuite, liveChain, missingAfterStop, paths, previewAndStart, smallChain, waitForEnd } from '../../core/engine-harness.ts';
import { startTestCore, type TestCore } from '../../core/core-harness.ts';
import { TEST_URI, type TestLabOptions } from '../../lab/harness.ts';

const uid = process.getuid?.() ?? 0;
assert.notEqual(uid, 0, 'these tests are for an ordinary user: 20-as-user.test.ts runs them as one');
assert.equal(TEST_URI, 'qemu:///session', 'run with STRATA_TEST_URI=qemu:///session');

describe("an ordinary user's own qemu:///session", { timeout: 150_000 }, () => {
  const t = engineSuite();
  const lab = (ctx: TestContext, options: TestLabOptions = {}) => t.lab(ctx, { ...smallChain, ...options });
  const refOf = (domain: string) => ({ hostId, domain, disk: 'vda' });

  it('makes the practice lab under a private data folder, since QEMU runs as this user, and removes it', async () => {
    // The data folder as Strata makes it (0700) inside the home: nobody else may enter.
    const dataDir = await mkdtemp(join(homedir(), '.strata-data-'));
    const home = await stat(homedir());
    const core = await startTestCore({ uri: TEST_URI, dataDir, labRoot: undefined });
    try {
      const caps = await core.client.call('host.capabilities', { hostId });
      assert.equal(caps.qemuUser?.uid, uid, `QEMU's user is this user: ${JSON.stringify(caps.qemuUser)}`);
      const detail = await core.client.call('lab.create', { hostId });
      const layers = detail.disks[0]?.chain ?? [];
      assert.equal(layers.length, 3, 'a three-layer chain');
      for (const layer of layers) assert.ok(layer.path.startsWith(join(dataDir, 'lab')), `${layer.path} is in the data folder`);
      console.log(`home ${homedir()} mode ${(home.mode & 0o777).toString(8)}; lab in ${join(dataDir, 'lab')}`);
      const check = await core.client.call('chain.check', { hostId, domain: detail.name, disk: 'vda' });
      const blocked = [...check.findings, ...check.layers.flatMap((l) => l.findings)].filter((f) => f.code === 'folder-blocked' || f.code === 'qemu-user-unknown');
      assert.deepEqual(blocked, [], 'the chain check judges the files for this user');
      assert.deepEqual(await core.client.call('lab.remove', { hostId, domain: detail.name }), { removed: detail.name });
    } finally {
      await core.close();
    }
  });

  it('pulls the whole chain into the active layer, which keeps every layer\'s data', async (ctx) => {
    const l = await lab(ctx);
    const { preview, job } = await previewAndStart(t.client, refOf(l.name), { kind: 'pull' });
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(l.name), paths(preview.after));
    assert.deepEqual(await missingAfterStop(l, l.layers[2]!), []);
  });

  it('commits the active layer into the base and pivots by itself', async (ctx) => {
    const l = await lab(ctx);
    const { preview, job } = await previewAndStart(t.client, refOf(l.name), { kind: 'commit', afterReady: 'pivot' }, { confirm: ['drop-layers'] });
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(l.name), [l.layers[0]]);
    assert.deepEqual(paths(preview.after), [l.layers[0]]);
    assert.deepEqual(await missingAfterStop(l, l.layers[0]!), []);
  });

  it("copies the disk to a new image with pivot, and the copy holds the guest's data", async (ctx) => {
    const l = await lab(ctx);
    const destination = join(l.dir, 'copy.qcow2');
    const { job } = await previewAndStart(t.client, refOf(l.name), { kind: 'copy', destination, afterReady: 'pivot' });
    const ended = await waitForEnd(t, job.id);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(l.name), [destination]);
    assert.equal((await stat(destination)).uid, uid, 'the copy belongs to this user, as QEMU does');
    assert.deepEqual(await missingAfterStop(l, destination), []);
  });
});

describe('qemu:///system without the rights to use it', () => {
  let t: TestCore | undefined;
  let usable = false;
  before(async () => {
    // A developer in the libvirt group (or with polkit's yes) can use it: then there is no refusal to see.
    usable = await LibvirtConnection.open('qemu:///system').then(
      (c) => c.close().then(() => true),
      () => false,
    );
    if (!usable) t = await startTestCore({ uri: 'qemu:///system' });
  });
  after(() => t?.close());

  it('waits for the user with the reason by kind and the fixes, instead of retrying', async (ctx) => {
    if (usable) {
      ctx.skip('this user may use qemu:///system');
      console.log('SKIPPED: this user may use qemu:///system, so it is not refused');
      return;
    }
    const [host] = await t!.client.call('hosts.list', {});
    assert.equal(host?.state, 'needs-user', `${host?.state}: ${host?.reason}`);
    const kind = host?.access?.kind;
    assert.ok(kind === 'polkit-unavailable' || kind === 'polkit-refused' || kind === 'not-in-group' || kind === 'group-needs-login' || kind === 'permission', `kind ${kind}`);
    assert.equal(host?.retryAt, null);
    assert.doesNotMatch(host?.hint ?? '', /libvirtd is not running/, 'the daemon runs: the hint must not say otherwise');
    const fixes = host?.access?.fixes ?? [];
    assert.ok(fixes.some((f) => f.uri === 'qemu:///session'), 'qemu:///session is offered');
    console.log(`qemu:///system refused: ${kind}: ${host?.access?.detail}\n  hint: ${host?.hint}`);
    const err = await t!.client.call('domains.list', { hostId }).catch((e: unknown) => e);
    assert.ok(err instanceof Error && /not connected/.test(err.message));
  });
});
