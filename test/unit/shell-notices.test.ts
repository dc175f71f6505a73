// The desktop notifications for jobs: which changes are told, once each, in the window's words.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job, JobPhase, JobType } from '../../src/shared/model.ts';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { repoRoot } from '../../scripts/electron-binary.mjs';
import { formatDuration, jobNotice, JobNotifier, jobWord } from '../../src/main/shell/job-notice.ts';

// The renderer's own formatting, loaded by path: it belongs to the web project, not this one.
const renderer = (await import(pathToFileURL(join(repoRoot, 'src/renderer/src/lib/format.ts')).href)) as {
  formatDuration(seconds: number): string;
  jobWord(type: JobType): string;
};

function job(phase: JobPhase, more: Partial<Job> = {}): Job {
  return {
    id: 'default/web/vda/1000', hostId: 'default', domain: 'web', disk: 'vda', type: 'pull', phase, cur: 50, end: 100,
    progress: 0.5, bandwidthBytesPerSec: 0, requestedBandwidthBytesPerSec: 0, afterReady: null, rateBytesPerSec: null,
    etaSeconds: null, startedAt: 1000, updatedAt: 1000, endedAt: null, origin: 'strata', outcome: null, ...more,
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

  it('uses the renderer’s words for job types and durations', () => {
    for (const type of ['pull', 'copy', 'commit', 'active-commit', 'backup', 'unknown'] as JobType[]) {
      assert.equal(jobWord(type), renderer.jobWord(type), type);
    }
    for (const s of [-1, 0, 0.4, 59.6, 60, 185, 3599, 3600, 7325, 86_399, 86_400, 200_000, Number.NaN, Infinity]) {
      assert.equal(formatDuration(s), renderer.formatDuration(s), String(s));
    }
  });
});

describe('the same sentences as the window’s notices', () => {
  // notices.svelte.ts runs only compiled by Svelte; its sentences are compared as text.
  it('every fixed sentence of a notification appears in the renderer’s notices', async () => {
    const { readFile } = await import('node:fs/promises');
    const source = await readFile(join(repoRoot, 'src/renderer/src/lib/notices.svelte.ts'), 'utf8');
    const sentences = [
      ...jobNotice(job('failed', { type: 'commit' }))!.body.split(/(?<=\.) /),
      ...jobNotice(job('failed', { type: 'copy' }))!.body.split(/(?<=\.) /),
      ...jobNotice(job('failed'))!.body.split(/(?<=\.) /),
      jobNotice(job('ready', { type: 'copy', afterReady: 'wait' }))!.body,
    ];
    for (const sentence of new Set(sentences)) assert.ok(source.includes(sentence), sentence);
    for (const phrase of ['} completed${took}', '} failed`', '} is ready to pivot`']) assert.ok(source.includes(phrase), phrase);
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
