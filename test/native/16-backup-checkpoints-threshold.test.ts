// Domain-wide jobs and the events that watch storage, on real lab domains (libvirtd + QEMU, a
// 3-layer chain with data in every layer), through the typed facade and so through the addon:
// suspend and resume; a block threshold on the active layer crossed by a pull that fills it;
// a push backup to a file with a checkpoint recorded as it starts (JOB_COMPLETED, the finished
// job's statistics, the copy's content, the checkpoint listed and deleted, its bitmap gone from
// the image); a pull-mode backup, which runs until aborted, for the running job's statistics, its
// description and virDomainAbortJob; the host-wide statistics against virsh domstats; and what
// libvirt answers for jobs and checkpoints that are not there.
//
// A push backup of a lab disk ends in well under a second, too soon to read it running or abort
// it without a race: the pull-mode backup is the job those calls are tested on.
import assert from 'node:assert/strict';
import { access, chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTraversable, runTool } from '../../src/main/core/lab/images.ts';
import { LibvirtConnection } from '../../src/main/libvirt/connection.ts';
import type { BlockJobNotice, BlockThresholdNotice, JobCompletedNotice } from '../../src/main/libvirt/types.ts';
import { libvirt, suiteLabs, sweepStaleLabDomains, TEST_URI, virsh, waitFor, type Connection } from '../lab/harness.ts';
import { assertLibvirtError, liveLayers, MiB, qemuImgInfo, rejection, virshBlockStats } from './block-helpers.ts';

/** Every notice a facade listener got, and a wait for one (already seen or still to come). */
class Notices<T> {
  readonly seen: T[] = [];
  #waiters = new Set<{ match: (n: T) => boolean; resolve: (n: T) => void }>();

  push = (n: T): void => {
    this.seen.push(n);
    for (const w of this.#waiters) {
      if (w.match(n)) {
        this.#waiters.delete(w);
        w.resolve(n);
      }
    }
  };

  waitFor(match: (n: T) => boolean, what: string, timeoutMs = 120_000): Promise<T> {
    const found = this.seen.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.seen)}`));
      }, timeoutMs);
      const waiter = {
        match,
        resolve: (n: T) => {
          clearTimeout(timer);
          resolve(n);
        },
      };
      this.#waiters.add(waiter);
    });
  }
}

interface BlockNode {
  file: string;
  'node-name': string;
  'dirty-bitmaps'?: { name: string; persistent: boolean }[];
}

/**
 * The persistent bitmaps QEMU holds on the image's format node. A running QEMU writes them into
 * the qcow2 only when it closes the image, so qemu-img cannot see them yet; QEMU's own monitor can.
 */
async function bitmapsOf(domain: string, path: string): Promise<string[]> {
  const command = JSON.stringify({ execute: 'query-named-block-nodes', arguments: { flat: true } });
  const nodes = (JSON.parse(await virsh(['qemu-monitor-command', domain, command])) as { return: BlockNode[] }).return;
  return nodes
    .filter((n) => n.file === path)
    .flatMap((n) => n['dirty-bitmaps'] ?? [])
    .filter((b) => b.persistent)
    .map((b) => b.name)
    .sort();
}

describe(`backups, checkpoints, job statistics, block thresholds and suspend/resume on ${TEST_URI}`, () => {
  const labs = suiteLabs();
  let conn: Connection;
  let facade: LibvirtConnection;
  let work: string;
  const thresholds = new Notices<BlockThresholdNotice>();
  const completed = new Notices<JobCompletedNotice>();
  const blockJobs = new Notices<BlockJobNotice>();

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
    facade = await LibvirtConnection.open(TEST_URI);
    await facade.onBlockThreshold(thresholds.push);
    await facade.onJobCompleted(completed.push);
    await facade.onBlockJob(blockJobs.push);
    // libvirtd (root) creates the backup's files; QEMU (libvirt-qemu) must reach them.
    work = await mkdtemp(join(tmpdir(), 'strata-native-backup-'));
    await makeTraversable(work);
  });

  after(async () => {
    await facade?.close();
    await conn?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('suspend pauses the domain and resume runs it again, as virsh sees it', async (t) => {
    const lab = await labs.use(t, conn, { tag: 'native-suspend' });
    await facade.domainSuspend(lab.name);
    assert.equal(await facade.domainState(lab.name), 'paused');
    assert.equal((await virsh(['domstate', lab.name])).trim(), 'paused');
    await facade.domainResume(lab.name);
    assert.equal(await facade.domainState(lab.name), 'running');
    assert.equal((await virsh(['domstate', lab.name])).trim(), 'running');
    assertLibvirtError(await rejection(facade.domainResume(lab.name)), 'VIR_ERR_OPERATION_INVALID');
  });

  test('a threshold on vda fires BLOCK_THRESHOLD once a pull writes past it into the active layer', async (t) => {
    const lab = await labs.use(t, conn, { tag: 'native-threshold' });
    const active = lab.layers.at(-1);
    const before = await lab.domain.blockInfo('vda');
    // The pull copies the base's 64 MiB into the active layer, far past 1 MiB over what it holds.
    const threshold = before.allocation + MiB;
    await facade.setBlockThreshold(lab.name, 'vda', threshold);
    assert.equal(thresholds.seen.filter((n) => n.domain === lab.name).length, 0, 'no event before anything was written');
    await facade.blockPull(lab.name, 'vda', 0);
    const crossed = await thresholds.waitFor((n) => n.domain === lab.name && n.dev === 'vda', `BLOCK_THRESHOLD of ${lab.name}/vda`);
    assert.equal(crossed.thresholdBytes, threshold);
    assert.ok(crossed.excessBytes > 0, `excess ${crossed.excessBytes}`);
    assert.equal(crossed.path, active);
    await blockJobs.waitFor((n) => n.domain === lab.name && n.status === 'completed', `the pull on ${lab.name} to complete`);
    const after = await lab.domain.blockInfo('vda');
    assert.ok(after.allocation >= threshold + crossed.excessBytes, `allocation ${after.allocation} after the event`);
    // libvirt 9.0 also reports the crossing under the active layer's own name, vda[N].
    const byIndex = await thresholds.waitFor((n) => n.domain === lab.name && /^vda\[\d+\]$/.test(n.dev), `BLOCK_THRESHOLD of ${lab.name}/vda[N]`);
    assert.equal(byIndex.path, active);
    assert.equal(byIndex.thresholdBytes, threshold);
  });

  test('a threshold on a backing layer (vda[N]) fires when an active commit writes into it', async (t) => {
    const lab = await labs.use(t, conn, { tag: 'native-threshold-layer' });
    const layers = liveLayers(await lab.domain.XMLDesc());
    const middle = layers[1];
    assert.ok(middle, JSON.stringify(layers));
    const dev = `vda[${middle.index}]`;
    const stats = await facade.layerStats(lab.name);
    const held = stats.find((s) => s.index === middle.index);
    assert.ok(held, JSON.stringify(stats));
    const threshold = held.allocation + 1;
    await facade.setBlockThreshold(lab.name, dev, threshold);
    // The active layer's 4 MiB move down into the middle one.
    await facade.blockCommit(lab.name, 'vda', { base: dev, top: 'vda', active: true, deleteLayers: false, bandwidthBytesPerSec: 0 });
    const crossed = await thresholds.waitFor((n) => n.domain === lab.name && n.dev === dev, `BLOCK_THRESHOLD of ${lab.name}/${dev}`);
    assert.equal(crossed.path, middle.file);
    assert.equal(crossed.thresholdBytes, threshold);
    await blockJobs.waitFor((n) => n.domain === lab.name && n.status === 'ready', `the commit on ${lab.name} to be ready`);
    await facade.blockJobAbort(lab.name, 'vda');
  });

  test('a push backup with a checkpoint: JOB_COMPLETED, the finished job’s statistics, a faithful copy; the checkpoint listed, then deleted with its bitmap', async (t) => {
    const lab = await labs.use(t, conn, { tag: 'native-backup' });
    const active = lab.layers.at(-1);
    assert.ok(active);
    const target = join(work, `${lab.name}-vda.qcow2`);
    const checkpoint = `strata-native-cp-${process.pid}`;
    const backupXml =
      `<domainbackup mode='push'><disks><disk name='vda' backup='yes' type='file'>` +
      `<target file='${target}'/><driver type='qcow2'/></disk></disks></domainbackup>`;
    const checkpointXml = `<domaincheckpoint><name>${checkpoint}</name><disks><disk name='vda' checkpoint='bitmap'/></disks></domaincheckpoint>`;

    await facade.backupBegin(lab.name, backupXml, checkpointXml);
    const done = await completed.waitFor((n) => n.domain === lab.name, `JOB_COMPLETED of ${lab.name}`);
    assert.equal(done.stats.type, 'completed');
    assert.equal(done.stats.operation, 'backup');
    assert.equal(done.stats.raw['success'], true);
    assert.equal(done.stats.dataTotalBytes, lab.chain.virtualSize);
    assert.equal(done.stats.dataProcessedBytes, lab.chain.virtualSize);
    assert.equal(done.stats.dataRemainingBytes, 0);
    assert.equal(done.stats.errorMessage, null);

    const last = await facade.jobStats(lab.name, { completed: true });
    assert.equal(last.type, 'completed');
    assert.equal(last.operation, 'backup');
    assert.equal(last.dataProcessedBytes, lab.chain.virtualSize);
    assert.equal((await facade.jobStats(lab.name)).type, 'none', 'no job runs once the backup is done');

    // The copy holds what the guest sees: every layer's data, flattened.
    await access(target);
    assert.equal((await qemuImgInfo(target))['virtual-size'], lab.chain.virtualSize);
    await runTool('qemu-img', ['compare', '-U', '-f', 'qcow2', '-F', 'qcow2', active, target]);

    const listed = await facade.listAllCheckpoints(lab.name);
    assert.deepEqual(
      listed.map((c) => [c.name, c.parent]),
      [[checkpoint, null]],
    );
    assert.match(listed[0]?.xml ?? '', new RegExp(`<disk name='vda' checkpoint='bitmap' bitmap='${checkpoint}'`));
    assert.match(await virsh(['checkpoint-list', lab.name, '--name']), new RegExp(checkpoint));
    assert.deepEqual(await bitmapsOf(lab.name, active), [checkpoint]);

    await facade.checkpointDelete(lab.name, checkpoint);
    assert.deepEqual(await facade.listAllCheckpoints(lab.name), []);
    assert.deepEqual(await bitmapsOf(lab.name, active), [], 'deleting the checkpoint removes its bitmap');
    assertLibvirtError(await rejection(facade.checkpointDelete(lab.name, checkpoint)), 'VIR_ERR_NO_DOMAIN_CHECKPOINT');
  });

  test('checkpoints chain: a second one’s parent is the first; children deletes both, metadataOnly keeps the bitmap', async (t) => {
    const lab = await labs.use(t, conn, { tag: 'native-checkpoints' });
    const active = lab.layers.at(-1);
    assert.ok(active);
    const xml = (name: string): string => `<domaincheckpoint><name>${name}</name><disks><disk name='vda' checkpoint='bitmap'/></disks></domaincheckpoint>`;
    assert.equal(await facade.checkpointCreateXML(lab.name, xml('strata-native-a')), 'strata-native-a');
    assert.equal(await facade.checkpointCreateXML(lab.name, xml('strata-native-b')), 'strata-native-b');
    const listed = await facade.listAllCheckpoints(lab.name);
    assert.deepEqual(
      listed.map((c) => [c.name, c.parent]),
      [
        ['strata-native-a', null],
        ['strata-native-b', 'strata-native-a'],
      ],
    );
    assert.doesNotMatch(listed[0]?.xml ?? '', /size=/, 'no size unless asked for');
    // VIR_DOMAIN_CHECKPOINT_XML_SIZE: the data written since each checkpoint, as QEMU's bitmaps hold it.
    const wrote = await virsh(['qemu-monitor-command', lab.name, '--hmp', `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x33 ${64 * MiB} ${2 * MiB}"`]);
    assert.equal(wrote.trim(), '');
    const sized = await facade.listAllCheckpoints(lab.name, { size: true });
    assert.deepEqual(
      sized.map((c) => [c.name, /<disk name='vda'[^>]*size='(\d+)'/.exec(c.xml)?.[1]]),
      [
        ['strata-native-a', String(2 * MiB)],
        ['strata-native-b', String(2 * MiB)],
      ],
    );
    // Forgetting b's metadata leaves its bitmap; redefining it from its XML brings the record back.
    const bXml = listed[1]?.xml ?? '';
    await facade.checkpointDelete(lab.name, 'strata-native-b', { metadataOnly: true });
    assert.deepEqual(await bitmapsOf(lab.name, active), ['strata-native-a', 'strata-native-b']);
    assert.equal(await facade.checkpointCreateXML(lab.name, bXml, { redefine: true }), 'strata-native-b');
    assert.equal((await facade.listAllCheckpoints(lab.name)).length, 2);
    await facade.checkpointDelete(lab.name, 'strata-native-a', { children: true });
    assert.deepEqual(await facade.listAllCheckpoints(lab.name), []);
    assert.deepEqual(await bitmapsOf(lab.name, active), []);
  });

  test('a pull-mode backup runs until aborted: its statistics and description while it runs, then virDomainAbortJob ends it', async (t) => {
    const lab = await labs.use(t, conn, { tag: 'native-pull-backup' });
    // QEMU (libvirt-qemu) creates the NBD socket itself: its directory must be writable by it.
    const sockets = join(work, `${lab.name}-sockets`);
    await mkdir(sockets, { mode: 0o1733 });
    await chmod(sockets, 0o1733);
    const socket = join(sockets, 'nbd.sock');
    const scratch = join(work, `${lab.name}-scratch.qcow2`);
    const backupXml =
      `<domainbackup mode='pull'><server transport='unix' socket='${socket}'/><disks>` +
      `<disk name='vda' backup='yes' type='file'><scratch file='${scratch}'/></disk></disks></domainbackup>`;
    assertLibvirtError(await rejection(facade.abortJob(lab.name)), 'VIR_ERR_OPERATION_INVALID');
    assertLibvirtError(await rejection(facade.backupGetXMLDesc(lab.name)), 'VIR_ERR_NO_DOMAIN_BACKUP');

    await facade.backupBegin(lab.name, backupXml, null);
    const running = await facade.jobStats(lab.name);
    assert.equal(running.type, 'unbounded');
    assert.equal(running.operation, 'backup');
    // A pull-mode backup moves nothing itself: it reports the scratch space its NBD export uses.
    assert.equal(running.raw['disk_temp_total'], lab.chain.virtualSize);
    assert.equal(running.dataTotalBytes, null);
    assert.ok(running.timeElapsedMs !== null && running.timeElapsedMs >= 0);
    const described = await facade.backupGetXMLDesc(lab.name);
    assert.match(described, /<domainbackup mode='pull'>/);
    assert.ok(described.includes(socket), described);

    await facade.abortJob(lab.name);
    await waitFor(async () => (await facade.jobStats(lab.name)).type === 'none', { what: `the backup of ${lab.name} to end after abortJob` });
    assertLibvirtError(await rejection(facade.backupGetXMLDesc(lab.name)), 'VIR_ERR_NO_DOMAIN_BACKUP');
    assert.deepEqual(await facade.listAllCheckpoints(lab.name), [], 'no checkpoint was asked for');
  });

  test('allDomainStats has state.* and every layer’s block.* for a lab domain, as virsh domstats says', async (t) => {
    const lab = await labs.use(t, conn, { tag: 'native-allstats' });
    const records = await facade.allDomainStats({ state: true, block: true, backing: true });
    const mine = records.find((r) => r.name === lab.name);
    assert.ok(mine, `${lab.name} in ${JSON.stringify(records.map((r) => r.name))}`);
    assert.equal(mine.stats['state.state'], libvirt.VIR_DOMAIN_RUNNING);
    assert.equal(mine.stats['block.count'], lab.layers.length);
    const virshStats = await virshBlockStats(lab.name);
    for (let i = 0; i < lab.layers.length; i++) {
      for (const key of ['name', 'path', 'backingIndex', 'capacity']) {
        const k = `block.${i}.${key}`;
        assert.equal(String(mine.stats[k]), virshStats[k], k);
      }
    }
    assert.deepEqual(
      lab.layers.map((_, i) => mine.stats[`block.${i}.path`]),
      [...lab.layers].reverse(),
      'active layer first, then its backing chain',
    );
    const stateOnly = (await facade.allDomainStats({ state: true })).find((r) => r.name === lab.name);
    assert.ok(stateOnly);
    assert.equal(stateOnly.stats['block.count'], undefined);
    const shallow = (await facade.allDomainStats({ block: true })).find((r) => r.name === lab.name);
    assert.equal(shallow?.stats['block.count'], 1, 'without backing, one entry per disk');
  });

  test('jobs and checkpoints that are not there, and unknown domains, reject with libvirt’s codes', async () => {
    const missing = `strata-native-missing-${process.pid}`;
    const calls: [string, () => Promise<unknown>][] = [
      ['domainSuspend', () => facade.domainSuspend(missing)],
      ['domainResume', () => facade.domainResume(missing)],
      ['jobStats', () => facade.jobStats(missing)],
      ['abortJob', () => facade.abortJob(missing)],
      ['backupBegin', () => facade.backupBegin(missing, '<domainbackup/>', null)],
      ['backupGetXMLDesc', () => facade.backupGetXMLDesc(missing)],
      ['checkpointCreateXML', () => facade.checkpointCreateXML(missing, '<domaincheckpoint/>')],
      ['listAllCheckpoints', () => facade.listAllCheckpoints(missing)],
      ['checkpointDelete', () => facade.checkpointDelete(missing, 'none')],
      ['setBlockThreshold', () => facade.setBlockThreshold(missing, 'vda', 1)],
    ];
    for (const [name, call] of calls) {
      const err = await rejection(call());
      assert.ok(err instanceof libvirt.LibvirtError, `${name}: ${String(err)}`);
      assert.equal(err.code, 'VIR_ERR_NO_DOMAIN', name);
    }
  });
});
