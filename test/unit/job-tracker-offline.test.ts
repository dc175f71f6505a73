// The tracker's part in offline jobs: their engine tells their end with its own words (also when
// it comes before the start returned), and nothing that watches libvirt settles them. A scripted
// source is used because libvirt never sees these jobs; test/offline runs them for real.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job, JobTransition } from '../../src/shared/model.ts';
import { JobTracker } from '../../src/main/core/jobs/job-tracker.ts';

function tracker() {
  const emitted: [Job, JobTransition][] = [];
  const t = new JobTracker({
    hostId: 'h',
    poll: async () => ({ type: 'copy', bandwidthBytesPerSec: 0, cur: 1, end: 2 }),
    settleVanished: async () => assert.fail('an offline job is never settled from libvirt'),
    emit: (j, tr) => emitted.push([j, tr]),
    ended: () => undefined,
    watched: () => false,
  });
  return { t, emitted };
}

describe('JobTracker and offline jobs', () => {
  it('ends an offline job with its engine’s words, and settleNow leaves it alone', () => {
    const { t, emitted } = tracker();
    t.request('dom', 'vda', 'copy', { requestedBandwidthBytesPerSec: 0, engine: 'qemu-storage-daemon' });
    const job = t.begin('dom', 'vda', 'copy', { bandwidthBytesPerSec: 0 });
    assert.equal(job.engine, 'qemu-storage-daemon');
    t.settleNow('dom', 'vda');
    assert.equal(t.active('dom', 'vda')?.phase, 'running', 'discovery cannot end it: libvirt does not see it');
    t.conclude('dom', 'vda', 'completed', 'completed: the definition rewritten');
    const last = emitted.at(-1)!;
    assert.deepEqual([last[1], last[0].phase, last[0].outcome, last[0].engine], ['ended', 'completed', 'completed: the definition rewritten', 'qemu-storage-daemon']);
  });

  it('keeps the words of an end told before the start returned', () => {
    const { t } = tracker();
    t.request('dom', 'vda', 'pull', { requestedBandwidthBytesPerSec: 0, engine: 'qemu-storage-daemon' });
    t.conclude('dom', 'vda', 'failed', 'failed: no room');
    const job = t.begin('dom', 'vda', 'pull', { bandwidthBytesPerSec: 0 });
    assert.deepEqual([job.phase, job.outcome], ['failed', 'failed: no room']);
  });
});
