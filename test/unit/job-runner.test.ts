// What Strata does with a host's jobs (JobRunner), against a scripted connection: libvirt's
// answers in an order the real daemon cannot be made to give on demand (a poll that answers after
// the ready event, a pivot QEMU refuses twice before it accepts, an end event before a queued
// job's turn). The same paths run against real libvirt and QEMU in test/core.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { JobOperation } from '../../src/shared/contract.ts';
import type { Disk, JobEvent } from '../../src/shared/model.ts';
import { previewOperation } from '../../src/main/core/chains/preview.ts';
import { JobRunner } from '../../src/main/core/jobs/job-runner.ts';
import { JobHistory } from '../../src/main/core/storage/history.ts';
import type { LibvirtConnection } from '../../src/main/libvirt/connection.ts';

const disk = (dir: string, target = 'vda'): Disk => ({
  target,
  device: 'disk',
  bus: 'virtio',
  readOnly: false,
  shareable: false,
  chain: [
    { index: 1, type: 'file', path: join(dir, `${target}-top.qcow2`), format: 'qcow2' },
    { index: 2, type: 'file', path: join(dir, `${target}-base.qcow2`), format: 'qcow2' },
  ],
});

function libvirtError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('JobRunner', () => {
  let dir: string;
  let history: JobHistory;
  let events: JobEvent[];
  let calls: string[];
  let abortAnswers: (Error | null)[];
  let runner: JobRunner;
  let waiters: { match: (e: JobEvent) => boolean; resolve: (e: JobEvent) => void }[];
  /** Called when a pivot or abort call is accepted. */
  let answered: (() => void) | null;

  const make = (maxConcurrentJobs = 0): JobRunner => {
    // Only what the runner calls; each answers at once, or as the test scripted it.
    const conn = {
      blockJobInfo: async () => null,
      blockPull: async (domain: string, target: string) => void calls.push(`pull ${domain}/${target}`),
      blockCopy: async (domain: string, target: string, options: { destination: string }) => {
        calls.push(`copy ${domain}/${target}`);
        await writeFile(options.destination, 'the copy');
      },
      blockJobAbort: async (domain: string, target: string, options: { pivot?: boolean }) => {
        calls.push(`${options.pivot ? 'pivot' : 'abort'} ${domain}/${target}`);
        const answer = abortAnswers.shift();
        if (answer) throw answer;
        answered?.();
      },
      blockJobSetSpeed: async () => {},
    } as unknown as LibvirtConnection;
    return new JobRunner({
      hostId: 'h',
      label: 'here',
      local: true,
      limits: { maxConcurrentJobs, bandwidthBudgetBytesPerSec: 0 },
      history,
      emit: (event) => {
        events.push(event);
        for (const w of waiters.filter((w) => w.match(event))) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(event);
        }
      },
      domainChanged: () => {},
      watched: () => false,
      conn: () => conn,
      call: (_action, fn) => fn(conn),
      disk: async (domain, target) => {
        const d = disk(dir, target);
        return { detail: { name: domain, uuid: 'u', state: 'running', disks: [d] }, disk: d };
      },
      preview: (_domain, d, op) => previewOperation(d, op),
      destinationRules: () => ({ labRoot: null }),
      pivotRetryDelayMs: 0,
    });
  };

  const next = (match: (e: JobEvent) => boolean): Promise<JobEvent> => new Promise((resolve) => waiters.push({ match, resolve }));
  const copy = (afterReady: 'wait' | 'pivot' | 'keep'): JobOperation => ({
    kind: 'copy', destination: join(dir, 'copy.qcow2'), format: 'qcow2', shallow: false, reuseExisting: false, synchronousWrites: false, afterReady,
  });
  const told = (id: string) => events.filter((e) => e.id === id).map((e) => `${e.transition}:${e.phase}`);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-runner-'));
    history = new JobHistory(dir);
    await history.load();
    events = [];
    calls = [];
    abortAnswers = [];
    waiters = [];
    answered = null;
    runner = make();
  });
  afterEach(async () => {
    runner.jobs.dispose();
    await history.flush();
    await rm(dir, { recursive: true, force: true });
  });

  it('a copy aborted at ready leaves a whole copy, though the last poll before ready answered after it', async () => {
    const job = await runner.start('vm', 'vda', copy('wait'), 0, [], 'refuse');
    runner.jobs.notice({ domain: 'vm', disk: 'vda', type: 'copy', status: 'ready' });
    runner.jobs.observe('vm', 'vda', { type: 'copy', bandwidthBytesPerSec: 0, cur: 7, end: 10 });
    await runner.abort('vm', 'vda');
    runner.jobs.notice({ domain: 'vm', disk: 'vda', type: 'copy', status: 'cancelled' });
    const ended = events.find((e) => e.id === job.id && e.transition === 'ended');
    assert.equal(ended?.phase, 'cancelled');
    assert.deepEqual({ ...ended?.leftover, bytes: null, fileId: null }, { path: join(dir, 'copy.qcow2'), partial: false, bytes: null, fileId: null, status: 'left' });
    assert.deepEqual(told(job.id), ['appeared:requested', 'phase:running', 'ready:ready', 'progress:ready', 'phase:aborting', 'ended:cancelled']);
    assert.equal(history.find(job.id)?.leftover?.partial, false, 'the history keeps it whole');
  });

  it('a copy cancelled before ready left a partial one', async () => {
    const job = await runner.start('vm', 'vda', copy('wait'), 0, [], 'refuse');
    runner.jobs.observe('vm', 'vda', { type: 'copy', bandwidthBytesPerSec: 0, cur: 7, end: 10 });
    await runner.abort('vm', 'vda');
    runner.jobs.notice({ domain: 'vm', disk: 'vda', type: 'copy', status: 'cancelled' });
    assert.equal(events.find((e) => e.id === job.id && e.transition === 'ended')?.leftover?.partial, true);
  });

  it('afterReady "pivot": asks again while QEMU is not ready for the switch, then pivots', async () => {
    abortAnswers = [libvirtError('VIR_ERR_BLOCK_COPY_ACTIVE', 'not ready for pivot yet'), libvirtError('VIR_ERR_BLOCK_COPY_ACTIVE', 'not ready for pivot yet')];
    const job = await runner.start('vm', 'vda', copy('pivot'), 0, [], 'refuse');
    const accepted = new Promise<void>((resolve) => (answered = resolve));
    runner.jobs.notice({ domain: 'vm', disk: 'vda', type: 'copy', status: 'ready' });
    await accepted;
    assert.deepEqual(calls, ['copy vm/vda', 'pivot vm/vda', 'pivot vm/vda', 'pivot vm/vda']);
    runner.jobs.notice({ domain: 'vm', disk: 'vda', type: 'copy', status: 'completed' });
    const ended = events.find((e) => e.id === job.id && e.transition === 'ended');
    assert.equal(ended?.outcome, 'completed: the disk now uses the new image');
    assert.equal(ended?.leftover, null, 'the copy is the disk now');
  });

  it('a pivot libvirt refuses for another reason leaves the job ready, and says why', async () => {
    abortAnswers = [libvirtError('VIR_ERR_OPERATION_INVALID', 'no')];
    const job = await runner.start('vm', 'vda', copy('wait'), 0, [], 'refuse');
    runner.jobs.notice({ domain: 'vm', disk: 'vda', type: 'copy', status: 'ready' });
    await assert.rejects(runner.pivot('vm', 'vda', async () => true), /Could not pivot vm\/vda/);
    assert.equal(runner.jobs.active('vm', 'vda')?.phase, 'ready');
    assert.deepEqual(told(job.id).slice(-2), ['phase:pivoting', 'ready:ready']);
  });

  it('afterReady "keep": aborts at ready, and the job completes with the chain kept, leaving nothing to remove', async () => {
    const job = await runner.start('vm', 'vda', copy('keep'), 0, [], 'refuse');
    runner.jobs.notice({ domain: 'vm', disk: 'vda', type: 'copy', status: 'ready' });
    assert.deepEqual(calls, ['copy vm/vda', 'abort vm/vda']);
    runner.jobs.notice({ domain: 'vm', disk: 'vda', type: 'copy', status: 'cancelled' });
    const ended = events.find((e) => e.id === job.id && e.transition === 'ended');
    assert.equal(ended?.phase, 'completed');
    assert.equal(ended?.outcome, 'completed: the disk kept its current chain (no pivot)');
  });

  it('a job queued for the host limit starts when the running one ends', async () => {
    runner.jobs.dispose();
    runner = make(1);
    const first = await runner.start('vm', 'vda', { kind: 'pull' }, 0, [], 'refuse');
    await assert.rejects(runner.start('vm', 'vdb', { kind: 'pull' }, 0, [], 'refuse'), /at most 1 jobs/);
    const queued = await runner.start('vm', 'vdb', { kind: 'pull' }, 0, [], 'queue');
    assert.equal(queued.phase, 'queued');
    const started = next((e) => e.id === queued.id && e.phase === 'running');
    runner.jobs.notice({ domain: 'vm', disk: 'vda', type: 'pull', status: 'completed' });
    await started;
    assert.deepEqual(calls, ['pull vm/vda', 'pull vm/vdb']);
    assert.deepEqual(told(first.id), ['appeared:requested', 'phase:running', 'ended:completed']);
    assert.deepEqual(told(queued.id), ['appeared:queued', 'phase:requested', 'phase:running']);
  });
});
