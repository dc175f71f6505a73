// The desktop notifications for jobs: which changes are told, once each, in the words the window
// uses too (src/shared/job-words.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job, JobPhase } from '../../src/shared/model.ts';
import { jobNotice, JobNotifier } from '../../src/main/shell/job-notice.ts';

function job(phase: JobPhase, more: Partial<Job> = {}): Job {
  return {
    id: 'default/web/vda/1000', hostId: 'default', domain: 'web', disk: 'vda', type: 'pull', phase, cur: 50, end: 100,
    progress: 0.5, bandwidthBytesPerSec: 0, requestedBandwidthBytesPerSec: 0, afterReady: null, rateBytesPerSec: null,
    etaSeconds: null, startedAt: 1000, updatedAt: 1000, endedAt: null, origin: 'strata', outcome: null, leftover: null, ...more,
  };
}

describe('jobNotice: the words', () => {
  it('a completed job, with how long it took', () => {
    const n = jobNotice(job('completed', { endedAt: 1000 + 185_000, outcome: 'completed' }));
    assert.deepEqual(n, {
      jobId: 'default/web/vda/1000', hostId: 'default', domain: 'web', disk: 'vda',
      title: 'Pull on web/vda completed after 3 min 05 s', body: '', urgency: 'normal',
    });
  });

  it('a failed job: critical, with libvirt’s outcome and what to try', () => {
    const n = jobNotice(job('failed', { type: 'commit', endedAt: 2000, outcome: 'No space left on device' }));
    assert.equal(n?.title, 'Commit on web/vda failed');
    assert.equal(n?.urgency, 'critical');
    assert.match(n?.body ?? '', /^No space left on device\nThe layers above the base may no longer be valid images/);
    assert.match(n?.body ?? '', /journalctl -u libvirtd/);
  });

  it('an outcome that only repeats the phase is not said twice', () => {
    const n = jobNotice(job('failed', { outcome: 'Failed' }));
    assert.equal(n?.body, 'The chain is unchanged: try again. Look at the host: journalctl -u libvirtd, and free space where the images live.');
  });

  it('a copy ready to pivot, unless Strata pivots or keeps it by itself', () => {
    assert.equal(jobNotice(job('ready', { type: 'copy', afterReady: 'wait' }))?.title, 'Copy on web/vda is ready to pivot');
    assert.equal(jobNotice(job('ready', { type: 'copy', afterReady: null }))?.title, 'Copy on web/vda is ready to pivot', 'a job started elsewhere waits for the user');
    assert.equal(jobNotice(job('ready', { type: 'copy', afterReady: 'pivot' })), null);
    assert.equal(jobNotice(job('ready', { type: 'active-commit', afterReady: 'keep' })), null);
  });

  it('says nothing for the other phases (a cancel is the user’s own doing)', () => {
    for (const phase of ['queued', 'requested', 'running', 'pivoting', 'aborting', 'cancelled', 'unknown'] as const) {
      assert.equal(jobNotice(job(phase)), null, phase);
    }
  });
});

describe('JobNotifier: once per change, from the stream of job events', () => {
  it('tells the completion of a job seen running, once, however many events repeat it', () => {
    const n = new JobNotifier();
    assert.equal(n.onJob(job('requested')), null);
    assert.equal(n.onJob(job('running')), null);
    assert.equal(n.onJob(job('running', { cur: 60 })), null);
    const done = job('completed', { endedAt: 4000 });
    assert.equal(n.onJob(done)?.title, 'Pull on web/vda completed after 3 s');
    assert.equal(n.onJob(done), null);
    assert.equal(n.onJob(job('completed', { endedAt: 4000, updatedAt: 5000 })), null);
  });

  it('tells a job that ends before any event showed it running (a fast job)', () => {
    assert.match(new JobNotifier().onJob(job('failed', { endedAt: 1500 }))?.title ?? '', /failed$/);
  });

  it('tells ready once, and again if the job comes back to ready after a refused pivot', () => {
    const n = new JobNotifier();
    const ready = job('ready', { type: 'copy', afterReady: 'wait' });
    assert.ok(n.onJob(ready));
    assert.equal(n.onJob({ ...ready, updatedAt: 2000 }), null);
    assert.equal(n.onJob(job('pivoting', { type: 'copy', afterReady: 'wait' })), null);
    assert.ok(n.onJob(ready), 'libvirt refused the pivot: it is waiting for the user again');
  });

  it('keeps jobs apart', () => {
    const n = new JobNotifier();
    assert.ok(n.onJob(job('completed', { id: 'a', endedAt: 2000 })));
    assert.ok(n.onJob(job('completed', { id: 'b', endedAt: 2000 })));
  });
});
