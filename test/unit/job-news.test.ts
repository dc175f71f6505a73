// What a job's change tells the user (src/shared/job-news.ts), and the desktop notification made
// of it: which changes are news, in the words the window uses too.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job, JobPhase, JobTransition } from '../../src/shared/model.ts';
import { jobNews } from '../../src/shared/job-news.ts';
import { jobNotice } from '../../src/main/desktop/job-notice.ts';

function job(phase: JobPhase, more: Partial<Job> = {}): Job {
  return {
    id: 'default/web/vda/1000', hostId: 'default', domain: 'web', disk: 'vda', type: 'pull', phase, cur: 50, end: 100,
    progress: 0.5, bandwidthBytesPerSec: 0, requestedBandwidthBytesPerSec: 0, afterReady: null, rateBytesPerSec: null,
    etaSeconds: null, startedAt: 1000, updatedAt: 1000, endedAt: null, origin: 'strata', outcome: null, leftover: null, ...more,
  };
}

describe('jobNews: which changes are news', () => {
  it('a completed job, with how long it took', () => {
    assert.deepEqual(jobNews(job('completed', { endedAt: 1000 + 185_000, outcome: 'completed' }), 'ended'), {
      kind: 'ok', title: 'Pull on web/vda completed after 3 min 05 s', detail: null, hint: null, urgency: 'normal',
    });
  });

  it('a failed job: critical, with libvirt’s outcome and what to try', () => {
    const news = jobNews(job('failed', { type: 'commit', endedAt: 2000, outcome: 'No space left on device' }), 'ended');
    assert.equal(news?.title, 'Commit on web/vda failed');
    assert.equal(news?.kind, 'bad');
    assert.equal(news?.urgency, 'critical');
    assert.equal(news?.detail, 'No space left on device');
    assert.match(news?.hint ?? '', /^The layers above the base may no longer be valid images.*journalctl -u libvirtd/);
  });

  it('an outcome that only repeats the phase is not said twice', () => {
    assert.equal(jobNews(job('failed', { outcome: 'Failed' }), 'ended')?.detail, null);
    assert.equal(jobNews(job('cancelled', { outcome: 'cancelled' }), 'ended')?.detail, null);
  });

  it('a cancel is told quietly, and an end out of sight says how little is known', () => {
    assert.deepEqual(jobNews(job('cancelled', { outcome: 'cancelled' }), 'ended'), { kind: 'info', title: 'Pull on web/vda cancelled', detail: null, hint: null, urgency: 'low' });
    const unknown = jobNews(job('unknown', { outcome: 'ended out of sight; its outcome cannot be known' }), 'ended');
    assert.equal(unknown?.title, 'Pull on web/vda ended; how is not known');
    assert.equal(unknown?.detail, 'ended out of sight; its outcome cannot be known');
  });

  it('a copy that left its file says where, whole or partial', () => {
    const leftover = { path: '/images/copy.qcow2', partial: false, bytes: 1, fileId: '1:2', status: 'left' as const };
    assert.equal(
      jobNews(job('cancelled', { type: 'copy', outcome: 'cancelled', leftover }), 'ended')?.detail,
      'The copy /images/copy.qcow2 is left on the host, unused; Strata can remove it.',
    );
    assert.match(jobNews(job('failed', { type: 'copy', leftover: { ...leftover, partial: true } }), 'ended')?.detail ?? '', /^The partial copy \/images\/copy\.qcow2/);
    assert.equal(jobNews(job('cancelled', { type: 'copy', leftover: { ...leftover, status: 'removed' } }), 'ended')?.detail, null);
  });

  it('a job started elsewhere: only its failure is news, said as started elsewhere', () => {
    const failed = jobNews(job('failed', { origin: 'external', endedAt: 9000, outcome: 'failed' }), 'ended');
    assert.equal(failed?.title, 'Pull on web/vda failed');
    assert.equal(failed?.detail, 'Started outside Strata (virsh or another libvirt client).');
    for (const phase of ['completed', 'cancelled', 'unknown'] as const) assert.equal(jobNews(job(phase, { origin: 'external' }), 'ended'), null, phase);
  });

  it('ready is news when the job waits for the user, not when Strata pivots or keeps it, nor another client’s', () => {
    assert.equal(jobNews(job('ready', { type: 'copy', afterReady: 'wait' }), 'ready')?.title, 'Copy on web/vda is ready to pivot');
    assert.equal(jobNews(job('ready', { type: 'copy', afterReady: null, origin: 'external' }), 'ready'), null);
    assert.equal(jobNews(job('ready', { type: 'copy', afterReady: 'pivot' }), 'ready'), null);
    assert.equal(jobNews(job('ready', { type: 'active-commit', afterReady: 'keep' }), 'ready'), null);
  });

  it('nothing else is news: appearing, moving between phases, progress, an amended record', () => {
    const quiet: [JobPhase, JobTransition][] = [
      ['queued', 'appeared'], ['requested', 'phase'], ['running', 'phase'], ['running', 'progress'],
      ['pivoting', 'phase'], ['aborting', 'phase'], ['cancelled', 'amended'], ['completed', 'amended'],
    ];
    for (const [phase, transition] of quiet) assert.equal(jobNews(job(phase), transition), null, `${phase} ${transition}`);
  });
});

describe('jobNotice: the desktop notification of a job event', () => {
  it('is the news, its detail and hint as the body', () => {
    const event = { ...job('failed', { outcome: 'No space left on device' }), transition: 'ended' as const };
    assert.deepEqual(jobNotice(event), {
      jobId: 'default/web/vda/1000', hostId: 'default', domain: 'web', disk: 'vda', title: 'Pull on web/vda failed',
      body: 'No space left on device\nThe chain is unchanged: try again. Look at the host: journalctl -u libvirtd, and free space where the images live.',
      urgency: 'critical',
    });
  });

  it('is nothing when the change is not news', () => {
    assert.equal(jobNotice({ ...job('running'), transition: 'progress' }), null);
  });
});
