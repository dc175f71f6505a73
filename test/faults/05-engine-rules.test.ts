// The engine rules the fault tests below made necessary, checked without a daemon: a burst of
// bandwidth changes becomes a few ordered calls, jobs created in one millisecond keep distinct
// ids, a job whose domain stopped or vanished ends with that reason, and a copy onto a full
// filesystem says so. The faults themselves run against real QEMU in 30-faults.test.ts and
// 40-libvirtd-killed.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fullDestinationReason } from '../../src/main/core/jobs/failure-reason.ts';
import { JobTracker } from '../../src/main/core/jobs/job-tracker.ts';
import { judgeVanished } from '../../src/main/core/jobs/settle.ts';
import { SpeedChanges } from '../../src/main/core/jobs/speed-changes.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('SpeedChanges', () => {
  it('a burst becomes one call at once and one with the latest value, never two in flight', async () => {
    const changes = new SpeedChanges(50);
    const sent: number[] = [];
    let inFlight = 0;
    let most = 0;
    const send = async (v: number) => {
      most = Math.max(most, ++inFlight);
      await sleep(5);
      sent.push(v);
      inFlight -= 1;
    };
    const replies = Array.from({ length: 100 }, (_, i) => changes.apply('d/vda', i, send));
    await Promise.all(replies);
    assert.deepEqual(sent, [0, 99]);
    assert.equal(most, 1);
  });

  it('a failed call rejects the requests it carried; the next value still goes out', async () => {
    const changes = new SpeedChanges(10);
    const sent: number[] = [];
    const send = async (v: number) => {
      sent.push(v);
      if (v === 1) throw new Error('no job');
    };
    const first = changes.apply('d/vda', 1, send);
    const second = changes.apply('d/vda', 2, send);
    await assert.rejects(first, /no job/);
    await second;
    assert.deepEqual(sent, [1, 2]);
  });

  it('disks do not wait for each other', async () => {
    const changes = new SpeedChanges(1_000);
    const sent: string[] = [];
    await Promise.all(['a/vda', 'b/vda'].map((k) => changes.apply(k, 1, async () => void sent.push(k))));
    assert.deepEqual(sent.sort(), ['a/vda', 'b/vda']);
  });
});

describe('JobTracker ids', () => {
  it('jobs queued in the same millisecond get distinct ids', () => {
    const tracker = new JobTracker({
      hostId: 'h',
      poll: async () => null,
      settleVanished: async () => ({ phase: 'unknown', outcome: 'unknown' }),
      emit: () => {},
      ended: () => {},
      watched: () => false,
      now: () => 1_000,
    });
    const ids = Array.from({ length: 5 }, () => tracker.enqueue('lab', 'vda', 'pull', { requestedBandwidthBytesPerSec: 0 }, async () => {}).id);
    assert.equal(new Set(ids).size, 5, ids.join(', '));
  });
});

describe('judgeVanished, when the domain is not running', () => {
  const expected = { before: ['/t', '/b'], after: ['/b'] };
  const job = { phase: 'running' as const, type: 'active-commit' as const, domain: 'd', disk: 'vda' };
  it('a domain shut off under the job: failed, saying it stopped', () => {
    const r = judgeVanished(job, ['/t', '/b'], expected, false);
    assert.equal(r.phase, 'failed');
    assert.match(r.outcome, /d stopped while the job ran/);
  });
  it('a domain gone from libvirt: unknown, saying it is gone', () => {
    const r = judgeVanished(job, null, expected, false);
    assert.equal(r.phase, 'unknown');
    assert.match(r.outcome, /can no longer be read: d is gone from libvirt \(its QEMU process ended/);
  });
  it('a domain gone during a pivot: unknown, since the pivot may have happened', () => {
    const r = judgeVanished({ ...job, phase: 'pivoting' }, null, expected, false);
    assert.equal(r.phase, 'unknown');
    assert.match(r.outcome, /during the pivot/);
  });
  it('an old chain after a pivot was asked for proves nothing: unknown, keep both images', () => {
    const r = judgeVanished({ ...job, phase: 'pivoting' }, ['/t', '/b'], expected);
    assert.equal(r.phase, 'unknown');
    assert.match(r.outcome, /after its pivot was asked for: libvirt shows the old chain, but QEMU may already use the new image/);
  });
  it("a stopped domain's chain proves nothing: its inactive definition names only the top image", () => {
    const pull = { ...job, type: 'pull' as const };
    const r = judgeVanished(pull, ['/t'], { before: ['/t', '/m', '/b'], after: ['/t'] }, false);
    assert.equal(r.phase, 'failed');
    assert.match(r.outcome, /stopped while the job ran/);
  });
});

describe('fullDestinationReason', () => {
  it('says nothing of a folder with room, or of one that is gone', () => {
    assert.equal(fullDestinationReason('/tmp/copy.qcow2'), null);
    assert.equal(fullDestinationReason('/no/such/folder/copy.qcow2'), null);
  });
});
