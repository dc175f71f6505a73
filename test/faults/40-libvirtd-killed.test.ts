// libvirtd killed outright (SIGKILL, as in a crash) under running jobs, and during a pivot, then
// started again as it was: the host shows lost and regained, each job is still followed under its
// own id and ends right, and no job is doubled or invented. Like test/core/30-restart.test.ts this
// drops every client of the machine's daemon, so it runs only in CI or when asked for.
import assert from 'node:assert/strict';
import { readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { defaultHostId as hostId } from '../../src/main/core/api/core.ts';
import { QmpClient } from '../../src/main/core/offline/qmp.ts';
import type { HostState } from '../../src/shared/model.ts';
import { startTestCore, type TestCore } from '../core/core-harness.ts';
import { hostEvents, liveChain, MiB, paths, previewAndStart, useDurableLab, waitForEnd, waitForJob } from '../core/engine-harness.ts';
import { sweepStaleLabDomains, TEST_URI, virsh, virshBlockJobInfo, waitFor } from '../lab/harness.ts';
import { restartLibvirtd, restartRefusal } from '../lab/daemon.ts';
import { assertOneLifeEach, checkImagesIn, stopDomain } from './fault-harness.ts';

/** Whether libvirt still knows the domain. */
async function knownToLibvirt(name: string): Promise<boolean> {
  return virsh(['domstate', name]).then(
    () => true,
    () => false,
  );
}

/**
 * Stops a QEMU of this test that libvirt lost track of, and removes the status files libvirt
 * kept for it and can no longer load: nothing of the test is left for the next daemon start.
 */
async function removeOrphan(name: string, pid: number): Promise<void> {
  if (await knownToLibvirt(name)) return;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (cmdline.includes(`guest=${name},`)) {
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => !(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes(`guest=${name},`), { what: `QEMU ${pid} to exit` });
  }
  for (const ext of ['xml', 'pid']) await rm(`/run/libvirt/qemu/${name}.${ext}`, { force: true });
}

/**
 * The active image of the domain's one disk as its QEMU itself reports it (`query-block`), asked
 * on the monitor socket libvirt opened for it: the only witness left once libvirt has forgotten
 * the domain. The socket is found from the monitor's fd on QEMU's command line, through its inode
 * in /proc/net/unix.
 */
async function qemuActiveImage(pid: number): Promise<string> {
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
  const fd = /id=charmonitor,fd=(\d+)/.exec(cmdline)?.[1];
  const inode = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`))?.[1];
  const socket = (await readFile('/proc/net/unix', 'utf8'))
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((fields) => fields[6] === inode && fields[7])?.[7];
  assert.ok(socket, `QEMU ${pid}'s monitor socket (fd ${fd}, inode ${inode}) is not in /proc/net/unix`);
  const qmp = await QmpClient.connect(socket);
  try {
    const devices = (await qmp.execute('query-block')) as { inserted?: { file?: string } }[];
    const file = devices.find((d) => d.inserted?.file)?.inserted?.file;
    assert.ok(file, `query-block named no image: ${JSON.stringify(devices)}`);
    return file;
  } finally {
    qmp.close();
  }
}

const refusal = restartRefusal();
if (refusal) console.log(`SKIPPED: ${refusal}`);

function statesSince(t: TestCore, from: number): HostState[] {
  const states = hostEvents(t, hostId)
    .slice(from)
    .map((h) => h.state);
  return states.filter((s, i) => s !== states[i - 1]);
}

async function regained(t: TestCore, from: number): Promise<HostState[]> {
  await waitFor(() => statesSince(t, from).length > 1 && statesSince(t, from).at(-1) === 'connected', { timeoutMs: 60_000, what: 'the host to reconnect' });
  const states = statesSince(t, from);
  assert.ok(states.includes('lost') && states.includes('retrying'), `host states: ${states.join(' → ')}`);
  return states;
}

describe('libvirtd killed under running jobs', { timeout: 240_000, skip: refusal ?? false }, () => {
  before(() => sweepStaleLabDomains());

  it('a throttled pull outlives a killed libvirtd: followed under its id, and completed', async (ctx) => {
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    const lab = await useDurableLab(ctx, { baseDataBytes: 32 * MiB, overlayDataBytes: MiB });
    const ref = { hostId, domain: lab.name, disk: 'vda' };
    const { preview, job } = await previewAndStart(t.client, ref, { kind: 'pull' }, { bandwidthBytesPerSec: MiB });
    await waitForJob(t, (j) => j.id === job.id && j.cur > 0, { what: 'the pull to make progress' });

    const from = hostEvents(t, hostId).length;
    const times = await restartLibvirtd({ signal: 'SIGKILL', downMs: 2_000 });
    ctx.diagnostic(`libvirtd killed, gone in ${times.stoppedAt - times.stoppingAt} ms, answering again ${times.upAt - times.stoppedAt} ms later`);
    ctx.diagnostic(`host states: ${(await regained(t, from)).join(' → ')}`);

    const listed = (await t.client.call('jobs.list', { hostId })).filter((j) => j.domain === lab.name);
    assert.deepEqual(listed.map((j) => [j.id, j.phase]), [[job.id, 'running']]);
    assert.equal((await virshBlockJobInfo(lab.name, 'vda'))['type'], 'Block Pull');
    await t.client.call('job.setSpeed', { ...ref, bandwidthBytesPerSec: 0 });
    const ended = await waitForEnd(t, job.id);
    ctx.diagnostic(`ended ${ended.phase}: ${ended.outcome}`);
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(lab.name), paths(preview.after));
    await assertOneLifeEach(t, lab.name, [job.id]);
    await stopDomain(lab.name);
    assert.deepEqual((await checkImagesIn(lab.dir)).failures, []);
  });

  it('libvirtd killed as a pivot is asked for: the copy ends once, with an outcome true to the chain', async (ctx) => {
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    const lab = await useDurableLab(ctx, { baseDataBytes: 8 * MiB, overlayDataBytes: MiB });
    const ref = { hostId, domain: lab.name, disk: 'vda' };
    const destination = join(lab.dir, 'copy.qcow2');
    const { job } = await previewAndStart(t.client, ref, { kind: 'copy', destination, afterReady: 'wait' });
    await waitForJob(t, (j) => j.id === job.id && j.phase === 'ready', { what: 'the copy to be ready' });

    const qemuPid = Number((await readFile(`/run/libvirt/qemu/${lab.name}.pid`, 'utf8')).trim());
    ctx.after(() => removeOrphan(lab.name, qemuPid));

    const from = hostEvents(t, hostId).length;
    const pivot = t.client.call('job.pivot', ref).then(
      (j) => `answered ${j.phase}`,
      (err: unknown) => `refused: ${String(err)}`,
    );
    const times = await restartLibvirtd({ signal: 'SIGKILL' });
    const pivotAnswer = await pivot;
    ctx.diagnostic(`pivot ${pivotAnswer}; libvirtd answering again ${times.upAt - times.stoppedAt} ms after it died`);
    ctx.diagnostic(`host states: ${(await regained(t, from)).join(' → ')}`);

    // Either the pivot reached QEMU before the daemon died, or the job is still ready for another.
    const now = await waitFor(async () => (await t.client.call('jobs.list', { hostId })).find((j) => j.id === job.id), { what: 'the job to be listed' });
    if (now.phase === 'ready') {
      ctx.diagnostic('the pivot did not reach QEMU: asking again');
      await t.client.call('job.pivot', ref);
    }
    const ended = await waitForEnd(t, job.id);
    ctx.diagnostic(`ended ${ended.phase}: ${ended.outcome}`);
    await assertOneLifeEach(t, lab.name, [job.id]);
    if (!(await knownToLibvirt(lab.name))) {
      // libvirt 9.0's own bug, measured here about one run in two: killed mid-pivot, it leaves a
      // status file with <mirror job=''> that it cannot load again, and forgets the domain while
      // its QEMU runs on. Its log says "unknown mirror job type ''" as it starts again.
      ctx.diagnostic('libvirt lost the domain across the kill (libvirt 9.0 bug); its QEMU is stopped by the test');
      if (ended.phase === 'completed') {
        // The kill came just after libvirt told the pivot's completion (seen once in a fresh-clone
        // run): the outcome must be true to what QEMU itself now writes to.
        assert.equal(await qemuActiveImage(qemuPid), destination);
        return;
      }
      // Otherwise Strata cannot know whether the disk switched, and says so.
      assert.equal(ended.phase, 'unknown', ended.outcome ?? '');
      assert.match(ended.outcome ?? '', /vanished from libvirt during the pivot/);
      return;
    }
    if (ended.phase === 'unknown') {
      // Also measured: the restarted daemon has no job left on the disk and shows its old chain,
      // while QEMU (query-block) may already write to the copy. Strata must not call that "the
      // chain did not change": it says the pivot was asked for and that both images must stay.
      const qemuView = await virsh(['qemu-monitor-command', lab.name, '{"execute":"query-block"}']);
      const qemuFile = /"file":\s*"([^"]+)"/.exec(qemuView)?.[1];
      ctx.diagnostic(`libvirt's chain: ${(await liveChain(lab.name)).join(' <- ')}; QEMU's own active image: ${qemuFile}`);
      assert.deepEqual(await liveChain(lab.name), [...lab.layers].reverse());
      assert.deepEqual(await virshBlockJobInfo(lab.name, 'vda'), {});
      // When the pivot call itself died with the daemon (EOF), Strata took the job back to ready
      // and cannot know that the pivot went through: the outcome stays 'unknown', not 'cancelled'.
      if (pivotAnswer.startsWith('answered')) assert.match(ended.outcome ?? '', /after its pivot was asked for: libvirt shows the old chain, but QEMU may already use the new image/);
      return;
    }
    assert.equal(ended.phase, 'completed', ended.outcome ?? '');
    assert.deepEqual(await liveChain(lab.name), [destination]);
    await stopDomain(lab.name);
    assert.deepEqual((await checkImagesIn(lab.dir)).failures, []);
  });
});
