// Where a copy or a new layer may be written, over the contract: never over an existing file unless
// reuse is asked (copy; a snapshot never reuses), never a relative path, never into Strata's own
// data folder (the practice labs' folder inside it excepted). All of it is decided before libvirt
// is asked, so libvirt's test driver (test:///default, whose domain 'test' runs) is enough.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { startTestCore, type TestCore } from '../core/core-harness.ts';
import { engineSuite, liveChain, rejection, smallChain } from '../core/engine-harness.ts';
import { virshBlockJobInfo } from '../lab/harness.ts';

describe('copy and snapshot destinations', () => {
  let t: TestCore;
  let outside: string;
  let labRoot: string;
  const ref = { hostId, domain: 'test', disk: 'vda' };

  before(async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-data-'));
    labRoot = join(dataDir, 'lab');
    t = await startTestCore({ uri: 'test:///default', dataDir, labRoot });
    outside = await mkdtemp(join(tmpdir(), 'strata-dest-'));
  });
  after(async () => {
    await t?.close();
    await rm(t.dataDir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  const copy = (destination: string, extra: Record<string, unknown> = {}) =>
    t.client.call('job.start', { ...ref, operation: { kind: 'copy', destination, ...extra } as never });
  const snapshot = (destination: string) => t.client.call('disk.snapshot', { ...ref, destination });
  // One after the other: a second call failing while the first is awaited would go unhandled.
  const both = (destination: string) => [() => copy(destination), () => snapshot(destination)];

  it('refuses relative paths and .. segments, saying a path must be absolute', async () => {
    for (const destination of ['copy.qcow2', './copy.qcow2', '~/copy.qcow2', 'images/../copy.qcow2', '/var/lib/../../etc/copy.qcow2']) {
      for (const p of both(destination)) {
        const err = await rejection(p());
        assert.equal(err.kind, 'invalid-request', destination);
        assert.equal(err.issues[0]?.path.endsWith('destination'), true, err.message);
        assert.match(err.message, /absolute path|\.\. segments/);
      }
    }
  });

  it('refuses any path inside the data folder, saying to choose one outside it', async () => {
    await mkdir(join(t.dataDir, 'logs'), { recursive: true });
    for (const destination of [join(t.dataDir, 'hosts.json'), join(t.dataDir, 'history.json'), join(t.dataDir, 'logs', 'new.qcow2'), join(t.dataDir, 'no', 'such', 'dir.qcow2'), t.dataDir]) {
      for (const p of both(destination)) {
        const err = await rejection(p());
        assert.equal(err.kind, 'invalid-request', `${destination}: ${err.message}`);
        assert.match(err.message, /inside Strata's data folder/);
        assert.ok(err.message.includes(destination));
        assert.match(err.hint ?? '', /outside it/);
      }
    }
  });

  it('sees through a symbolic link into the data folder', async () => {
    const link = join(outside, 'innocent');
    await symlink(t.dataDir, link);
    for (const p of both(join(link, 'history.json'))) assert.match((await rejection(p())).message, /inside Strata's data folder/);
    for (const p of both(join(link, 'new', 'deeper.qcow2'))) assert.match((await rejection(p())).message, /inside Strata's data folder/);
  });

  it('lets images go to the practice labs’ folder inside the data folder (the preflight or libvirt then answers)', async () => {
    await mkdir(labRoot, { recursive: true });
    for (const p of both(join(labRoot, 'strata-lab-1', 'copy.qcow2'))) {
      const err = await rejection(p());
      assert.doesNotMatch(err.message, /data folder/, 'the lab folder is for images');
      // Past the destination rules, the folder is judged as any other: here it does not exist.
      assert.ok(err.libvirt !== null || /^Not started: The folder .* does not exist/.test(err.message), `answered by: ${err.message}`);
    }
  });

  it('a snapshot never writes over an existing file', async () => {
    const existing = join(outside, 'existing.qcow2');
    await writeFile(existing, 'not an image');
    const err = await rejection(snapshot(existing));
    assert.equal(err.kind, 'conflict');
    assert.match(err.message, /already exists: Strata does not write over a file/);
    assert.match(err.hint ?? '', /another destination/);
  });

  it('a copy writes over an existing file only when reuse is asked and confirmed; reuse needs the file', async () => {
    const existing = join(outside, 'existing-copy.qcow2');
    await writeFile(existing, 'not an image');
    const exists = await rejection(copy(existing));
    assert.equal(exists.kind, 'conflict');
    assert.match(exists.message, /already exists/);
    assert.match(exists.hint ?? '', /reuseExisting/);
    const unconfirmed = await rejection(copy(existing, { reuseExisting: true }));
    assert.equal(unconfirmed.kind, 'conflict');
    assert.match(unconfirmed.hint ?? unconfirmed.message, /reuse-existing-file/);
    const missing = await rejection(
      t.client.call('job.start', { ...ref, operation: { kind: 'copy', destination: join(outside, 'absent.qcow2'), reuseExisting: true }, confirm: ['reuse-existing-file'] }),
    );
    assert.equal(missing.kind, 'invalid-request');
    assert.match(missing.message, /does not exist/);
  });

  it('a fresh path outside the data folder passes every check and goes to libvirt', async () => {
    for (const p of both(join(outside, 'fresh.qcow2'))) {
      const err = await rejection(p());
      assert.ok(err.libvirt !== null, `the test driver's own answer, not a refusal: ${err.message}`);
    }
  });
});

// The same refusals on a running QEMU domain: the chain, the file and the disk's jobs as they were.
describe('destinations on real QEMU', { timeout: 180_000 }, () => {
  const t = engineSuite();

  it('a snapshot onto an existing file, a copy or a snapshot into the data folder: refused, nothing changed', async (ctx) => {
    const l = await t.lab(ctx, smallChain);
    const ref = { hostId, domain: l.name, disk: 'vda' };
    const chain = await liveChain(l.name);
    const existing = join(l.dir, 'existing.qcow2');
    await writeFile(existing, 'precious');

    const onExisting = await rejection(t.client.call('disk.snapshot', { ...ref, destination: existing }));
    assert.equal(onExisting.kind, 'conflict');
    assert.match(onExisting.message, /already exists/);

    const intoData = join(t.dataDir, 'history.json');
    const copy = await rejection(t.client.call('job.start', { ...ref, operation: { kind: 'copy', destination: intoData, afterReady: 'pivot' } }));
    assert.match(copy.message, /inside Strata's data folder/);
    const snap = await rejection(t.client.call('disk.snapshot', { ...ref, destination: join(t.dataDir, 'layer.qcow2') }));
    assert.match(snap.message, /inside Strata's data folder/);

    assert.equal(await readFile(existing, 'utf8'), 'precious');
    assert.deepEqual(await liveChain(l.name), chain);
    assert.deepEqual(await virshBlockJobInfo(l.name, 'vda'), {}, 'no job was started');
  });
});
