// A queued job passes its preflight again when it leaves the queue: the job ahead of it may have
// taken the space it needed. Against a scripted connection and preflight, because which job ends
// first and what the file system holds at that moment cannot be made to happen on demand on the
// shared daemon (its queue counts every job on the host); test/core/95-space-guard runs the real
// preflight on a tmpfs.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { StrataError } from '../../src/shared/errors.ts';
import type { Disk, JobEvent } from '../../src/shared/model.ts';
import { previewOperation } from '../../src/main/core/chains/preview.ts';
import { JobRunner } from '../../src/main/core/jobs/job-runner.ts';
import { JobHistory } from '../../src/main/core/storage/history.ts';
import type { LibvirtConnection } from '../../src/main/libvirt/connection.ts';

it('a queued job whose preflight fails when its turn comes ends failed with the reason, and never starts', async (ctx) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-queue-preflight-'));
  const history = new JobHistory(dir);
  await history.load();
  ctx.after(async () => {
    await history.flush();
    await rm(dir, { recursive: true, force: true });
  });
  const calls: string[] = [];
  const events: JobEvent[] = [];
  const conn = {
    blockJobInfo: async () => null,
    blockPull: async (domain: string, target: string) => void calls.push(`pull ${domain}/${target}`),
    blockJobSetSpeed: async () => {},
  } as unknown as LibvirtConnection;
  const disk = (target: string): Disk => ({
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
  const runner = new JobRunner({
    hostId: 'h',
    label: 'here',
    local: true,
    limits: { maxConcurrentJobs: 1, bandwidthBudgetBytesPerSec: 0 },
    history,
    emit: (event) => void events.push(event),
    domainChanged: () => {},
    watched: () => false,
    conn: () => conn,
    call: (_action, fn) => fn(conn),
    disk: async (domain, target) => ({ detail: { name: domain, uuid: 'u', state: 'running', disks: [disk(target)] }, disk: disk(target) }),
    preview: (_domain, d, op) => previewOperation(d, op),
    destinationRules: () => ({ labRoot: null }),
  });
  ctx.after(() => runner.jobs.dispose());

  await runner.start('vm', 'vda', { kind: 'pull' }, 0, [], 'refuse');
  let room = true;
  const preflights: boolean[] = [];
  const preflight = async (): Promise<void> => {
    preflights.push(room);
    if (!room) throw new StrataError('conflict', 'Not started: Not enough room where the job writes: it needs about 40 MiB, 10 MiB free on /pool.');
  };
  const queued = await runner.start('vm', 'vdb', { kind: 'pull' }, 0, [], 'queue', preflight);
  assert.equal(queued.phase, 'queued');

  room = false;
  runner.jobs.notice({ domain: 'vm', disk: 'vda', type: 'pull', status: 'completed' });
  const ended = await new Promise<JobEvent>((resolve) => {
    const look = (): void => {
      const e = events.find((x) => x.id === queued.id && x.transition === 'ended');
      if (e) resolve(e);
      else setImmediate(look);
    };
    look();
  });
  assert.deepEqual(preflights, [true, false], 'checked at the request and again when its turn came');
  assert.equal(ended.phase, 'failed');
  assert.match(ended.outcome ?? '', /^could not start after waiting in the queue: Not started: Not enough room where the job writes/);
  assert.deepEqual(calls, ['pull vm/vda'], 'the queued pull was never asked of libvirt');
});
