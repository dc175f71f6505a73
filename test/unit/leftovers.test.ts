// The removal of a copy's leftover against a copy started into the same file at the same moment.
// A fake connection is used because the real daemon cannot, on demand, hold the domain listing
// open while another request arrives; removal against real libvirt is in test/core/80-leftovers.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Job } from '../../src/shared/model.ts';
import { StrataError } from '../../src/shared/errors.ts';
import { Leftovers } from '../../src/main/core/jobs/leftovers.ts';
import { JobTracker } from '../../src/main/core/jobs/job-tracker.ts';
import { JobHistory } from '../../src/main/core/storage/history.ts';
import type { LibvirtConnection } from '../../src/main/libvirt/connection.ts';
import type { RawDomain } from '../../src/main/libvirt/types.ts';

function cancelledCopy(path: string, fileId: string): Job {
  return {
    id: 'h/vm/vda@1', hostId: 'h', domain: 'vm', disk: 'vda', type: 'copy', phase: 'cancelled', cur: 1, end: 2, progress: 0.5,
    bandwidthBytesPerSec: 0, requestedBandwidthBytesPerSec: 0, afterReady: 'wait', rateBytesPerSec: null, etaSeconds: null,
    startedAt: 1, updatedAt: 2, endedAt: 2, origin: 'strata', outcome: 'cancelled',
    leftover: { path, partial: true, bytes: 4096, fileId, status: 'left' },
  };
}

describe('Leftovers against a copy started into the same file', () => {
  let dir: string;
  let file: string;
  let history: JobHistory;
  let answer: (domains: RawDomain[]) => void;
  let leftovers: Leftovers;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-leftovers-'));
    file = join(dir, 'copy.qcow2');
    await writeFile(file, 'partial copy');
    const st = await stat(file);
    history = new JobHistory(dir);
    await history.load();
    await history.add(cancelledCopy(file, `${st.dev}:${st.ino}`));
    // The host's domain listing answers only when the test says so; no domain uses the file.
    const listing = new Promise<RawDomain[]>((resolve) => (answer = resolve));
    const conn = { listDomains: () => listing } as unknown as LibvirtConnection;
    const jobs = new JobTracker({ hostId: 'h', poll: async () => null, settleVanished: async () => ({ phase: 'unknown', outcome: '' }), emit: () => {}, rerecord: (job) => history.replace(job), ended: () => {}, watched: () => false });
    leftovers = new Leftovers({ hostId: 'h', label: 'here', local: true, history, jobs, call: (_action, fn) => fn(conn) });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('a copy being started into the file while the domains are read keeps it; released, the file can go', async () => {
    const removal = leftovers.remove('h/vm/vda@1', ['delete-files']);
    const release = leftovers.claim(file);
    answer([]);
    const refused = await removal.then(
      () => assert.fail('removed a file a copy was being started into'),
      (err: unknown) => err,
    );
    assert.ok(refused instanceof StrataError);
    assert.match(refused.message, /a copy is being started into/);
    await stat(file);

    release();
    const removed = await leftovers.remove('h/vm/vda@1', ['delete-files']);
    assert.equal(removed.leftover?.status, 'removed');
    await assert.rejects(stat(file), { code: 'ENOENT' });
    assert.equal(history.find('h/vm/vda@1')?.leftover?.status, 'removed');
  });

  it('a copy that started into the file while the domains were read owns it', async () => {
    const removal = leftovers.remove('h/vm/vda@1', ['delete-files']);
    await leftovers.reused(file);
    answer([]);
    await assert.rejects(removal, /written into by a later copy/);
    await stat(file);
    assert.equal(history.find('h/vm/vda@1')?.leftover?.status, 'reused');
  });
});
