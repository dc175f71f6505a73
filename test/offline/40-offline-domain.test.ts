// A shut-off libvirt domain under an offline job: starting it is refused by QEMU's image locks
// (libvirt's own message), the job goes on and completes, and the definition then names the new
// chain while the rest of the XML stays as it was; the domain boots on it.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { definedSource, rewriteDiskChain } from '../../src/main/core/offline/domain-definition.ts';
import { readImageChain } from '../../src/main/core/offline/image-tool.ts';
import { IntentStore } from '../../src/main/core/offline/intents.ts';
import { OfflineJob } from '../../src/main/core/offline/offline-job.ts';
import { OfflinePlanError } from '../../src/main/core/offline/plan.ts';
import { settleOfflineJob } from '../../src/main/core/offline/settle.ts';
import { chainBlockdevs, StorageDaemon, StorageDaemonError } from '../../src/main/core/offline/storage-daemon.ts';
import {
  assertChainClean,
  assertSameData,
  daemonsUnder,
  makeChain,
  MiB,
  sweepStaleDefinedDomains,
  useDefinedDomain,
  useLabDir,
  virsh,
  virshDefinition,
  virshFails,
} from './offline-harness.ts';

before(() => sweepStaleDefinedDomains());

test('virsh start during an offline copy is refused by the image lock; the copy completes and the domain boots on it', async (t) => {
  const dir = await useLabDir(t, 'offline-start');
  const chain = await makeChain(dir, { writes: [[[0, 32 * MiB]], [[0, 1 * MiB]]] });
  const name = await useDefinedDomain(t, dir, chain.active, 'start');
  const access = virshDefinition(dir);
  const xmlBefore = await access.inactiveXml(name);
  const store = new IntentStore(join(dir, 'data'));
  const destination = join(dir, 'moved.qcow2');
  const job = await OfflineJob.start({
    domain: name,
    disk: 'vda',
    operation: { kind: 'copy', image: chain.active, destination, format: 'qcow2', shallow: false },
    bandwidthBytesPerSec: 2 * MiB,
    intents: store,
  });
  for (let p = await job.progress(); !p || p.cur === 0; p = await job.progress()) await new Promise((r) => setTimeout(r, 20));

  const refusal = await virshFails(['start', name]);
  t.diagnostic(`libvirt's refusal: ${refusal.replace(/\s+/g, ' ')}`);
  // libvirt 9.0 says only that QEMU closed its monitor; QEMU's own reason, the lock, is in the
  // domain's log, which is where a user would look (and what Strata names: the job holding the images).
  assert.match(refusal, /Failed to start domain/);
  const qemuLog = await readFile(`/var/log/libvirt/qemu/${name}.log`, 'utf8');
  const lockLine = qemuLog.split('\n').find((l) => /Failed to get (shared )?"write" lock/.test(l));
  t.diagnostic(`QEMU's reason: ${lockLine ?? '(none)'}`);
  assert.ok(lockLine, `QEMU names the lock in its log:\n${qemuLog.slice(-800)}`);
  assert.match(await virsh(['domstate', name]), /shut off/);
  const still = await job.progress();
  assert.ok(still && still.status !== 'concluded', 'the job goes on after the refused start');

  await job.setSpeed(0);
  const outcome = await job.done;
  assert.equal(outcome.status, 'completed', outcome.message ?? '');
  assert.deepEqual(await daemonsUnder(dir), []);
  await assertSameData(chain, destination);
  assert.deepEqual(await assertChainClean(destination), [destination]);

  await settleOfflineJob(job.intent, true, store, access);
  const xmlAfter = await access.inactiveXml(name);
  assert.deepEqual(definedSource(xmlAfter, 'vda'), { path: destination, format: 'qcow2' });
  assert.equal(xmlAfter, rewriteDiskChain(xmlBefore, 'vda', [{ path: destination, format: 'qcow2' }]), 'only the source changed');
  assert.deepEqual(await store.list(), []);

  await virsh(['start', name]);
  const live = await virsh(['dumpxml', name]);
  assert.match(live, new RegExp(`<source file='${destination}'`));
  await virsh(['destroy', name]);
  // The source chain was never changed: still valid and the same data.
  assert.deepEqual(await assertChainClean(chain.active), [chain.active, chain.layers[0]]);
});

test('an active commit on a shut-off domain: the definition moves to the base, which boots', async (t) => {
  const dir = await useLabDir(t, 'offline-commit');
  const chain = await makeChain(dir);
  const [base, , active] = chain.layers as [string, string, string];
  const name = await useDefinedDomain(t, dir, active, 'commit');
  const access = virshDefinition(dir);
  const job = await OfflineJob.start({ domain: name, disk: 'vda', operation: { kind: 'commit', image: active, top: active, base }, bandwidthBytesPerSec: 0 });
  const outcome = await job.done;
  assert.equal(outcome.status, 'completed', outcome.message ?? '');
  await settleOfflineJob(job.intent, true, null, access);
  assert.deepEqual(definedSource(await access.inactiveXml(name), 'vda'), { path: base, format: 'qcow2' });
  await assertSameData(chain, base);
  await virsh(['start', name]);
  assert.match(await virsh(['domblklist', name]), new RegExp(base));
  await virsh(['destroy', name]);
});

test('a domain started between planning and start: the offline job is refused by the lock, and says so', async (t) => {
  const dir = await useLabDir(t, 'offline-running');
  const chain = await makeChain(dir, { writes: [[[0, 1 * MiB]], [[0, 65536]]] });
  const planned = await readImageChain(chain.active);
  const name = await useDefinedDomain(t, dir, chain.active, 'running');
  await virsh(['start', name]);
  await assert.rejects(
    OfflineJob.start({ domain: name, disk: 'vda', operation: { kind: 'pull', image: chain.active, base: null }, bandwidthBytesPerSec: 0 }),
    (err: unknown) => err instanceof OfflinePlanError && /is in use/.test(err.message) && err.message.includes(name),
  );
  // Started after the images were read: the daemon itself is refused by QEMU's lock, and exits.
  await assert.rejects(StorageDaemon.start({ nodes: chainBlockdevs(planned, new Set([0])) }), (err: unknown) => {
    t.diagnostic(`the daemon's refusal: ${String(err)}`);
    return err instanceof StorageDaemonError && /lock/.test(err.message);
  });
  assert.deepEqual(await daemonsUnder(dir), []);
  await virsh(['destroy', name]);
  assert.deepEqual(await assertChainClean(chain.active), [chain.active, chain.layers[0]]);
  await assertSameData(chain, chain.active);
});
