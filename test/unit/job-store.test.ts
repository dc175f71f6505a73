// The window's store of jobs (src/renderer/src/lib/jobs.svelte.ts), its runes compiled by Svelte
// as the renderer's build does (support/svelte-modules.ts): how `job` events and replies merge,
// and what it tells its listeners, from the transition each event carries.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StrataClient } from '../../src/shared/bridge.ts';
import type { Job, JobEvent, JobPhase, JobTransition } from '../../src/shared/model.ts';
import './support/svelte-modules.ts';

const { JobStore } = await import('../../src/renderer/src/lib/jobs.svelte.ts');

function job(phase: JobPhase, more: Partial<Job> = {}): Job {
  return {
    id: 'h/web/vda@1000', hostId: 'h', domain: 'web', disk: 'vda', type: 'pull', phase, cur: 0, end: 100,
    progress: 0, bandwidthBytesPerSec: 0, requestedBandwidthBytesPerSec: 0, afterReady: null, rateBytesPerSec: null,
    etaSeconds: null, startedAt: 1000, updatedAt: 1000, endedAt: null, origin: 'strata', outcome: null, leftover: null, ...more,
  };
}

const event = (j: Job, transition: JobTransition): JobEvent => ({ ...j, transition });

/**
 * A store over a client that answers `jobs.list` and `history.list` as told, and counts the calls.
 * `whileListing` runs while `jobs.list` is in flight, as events that arrive before its reply do.
 */
function store(listed: Job[] = [], whileListing: () => void = () => {}) {
  const called: string[] = [];
  const client = {
    call: async (method: string) => {
      called.push(method);
      if (method === 'jobs.list') whileListing();
      return method === 'jobs.list' ? listed : [];
    },
  } as unknown as StrataClient;
  const jobs = new JobStore(client);
  const ended: Job[] = [];
  const changes: string[] = [];
  jobs.onEnd((j) => ended.push(j));
  jobs.onChange((j, t) => changes.push(`${t}:${j.phase}`));
  return { jobs, called, ended, changes };
}

const ref = { hostId: 'h', domain: 'web', disk: 'vda' };

describe('JobStore: merging job events and replies', () => {
  it('follows a job through its events; the transition is passed on, not kept on the job', () => {
    const s = store();
    s.jobs.apply(event(job('running'), 'appeared'));
    s.jobs.apply(event(job('running', { cur: 50, progress: 0.5, updatedAt: 1200 }), 'progress'));
    const [entry] = s.jobs.liveOn(ref);
    assert.equal(entry?.job.progress, 0.5);
    assert.equal('transition' in (entry?.job ?? {}), false);
    assert.equal(s.jobs.countOn('h', 'web'), 1);
    assert.deepEqual(s.changes, ['appeared:running', 'progress:running']);
  });

  it('a late reply never rolls an event back', () => {
    const s = store();
    s.jobs.apply(event(job('running', { cur: 80, progress: 0.8, updatedAt: 1500 }), 'progress'));
    assert.equal(s.jobs.upsert(job('running', { cur: 10, progress: 0.1, updatedAt: 1100 })), false);
    assert.equal(s.jobs.liveOn(ref)[0]?.job.progress, 0.8);
  });

  it('an end is told once, from its event; the disk keeps its latest ending only', () => {
    const s = store();
    const older = job('completed', { id: 'h/web/vda@500', startedAt: 500, updatedAt: 900, endedAt: 900 });
    s.jobs.apply(event(older, 'ended'));
    s.jobs.apply(event(job('running'), 'appeared'));
    const done = job('completed', { progress: 1, updatedAt: 3000, endedAt: 3000 });
    s.jobs.upsert(done);
    assert.deepEqual(s.ended.map((j) => j.id), [older.id], 'a reply that shows the end tells nothing');
    s.jobs.apply(event(done, 'ended'));
    assert.deepEqual(s.ended.map((j) => j.id), [older.id, done.id]);
    assert.equal(s.jobs.lastEnded(ref)?.id, done.id);
    assert.deepEqual(s.jobs.liveOn(ref), []);
    // The older ending, told again late, is stale: no card shows it, no one is told.
    s.jobs.apply(event(older, 'ended'));
    assert.equal(s.jobs.lastEnded(ref)?.id, done.id);
    assert.equal(s.ended.length, 2);
  });

  it('a queued job: its place in the queue, then running', () => {
    const s = store();
    s.jobs.apply(event(job('running', { id: 'h/web/vdb@900', disk: 'vdb', startedAt: 900 }), 'appeared'));
    const queued = job('queued');
    s.jobs.apply(event(queued, 'appeared'));
    assert.equal(s.jobs.placeInQueue(queued), 1);
    s.jobs.apply(event(job('running', { updatedAt: 1100 }), 'phase'));
    assert.equal(s.jobs.liveOn(ref)[0]?.queued, false);
    assert.equal(s.jobs.placeInQueue(queued), 0);
  });

  it('an amended ending reads the history again, even when a later ending shows on the card', () => {
    const s = store();
    const left = { path: '/i/c.qcow2', partial: false, bytes: 1, fileId: '1:1', status: 'left' as const };
    const older = job('cancelled', { id: 'h/web/vda@500', type: 'copy', startedAt: 500, endedAt: 900, updatedAt: 900, leftover: left });
    s.jobs.apply(event(job('completed', { endedAt: 3000, updatedAt: 3000 }), 'ended'));
    assert.deepEqual(s.called, []);
    s.jobs.apply(event({ ...older, leftover: { ...left, status: 'removed' }, updatedAt: 4000 }, 'amended'));
    assert.deepEqual(s.called, ['history.list'], 'asked at once');
    assert.equal(s.jobs.lastEnded(ref)?.job.phase, 'completed');
  });

  it('a running job the list no longer has was lost track of, not given an outcome', async () => {
    const s = store([]);
    s.jobs.apply(event(job('running'), 'appeared'));
    await s.jobs.load();
    assert.deepEqual(s.jobs.liveOn(ref), []);
    assert.equal(s.jobs.lost(ref)?.id, job('running').id);
  });

  it('a job that starts or moves while the list is in flight is not lost: its event is newer than the list', async () => {
    const moved = job('running', { id: 'h/web/vdb@900', disk: 'vdb', startedAt: 900 });
    const started = job('running', { id: 'h/db/vda@1500', domain: 'db', startedAt: 1500 });
    const s = store([], () => {
      s.jobs.apply(event({ ...moved, cur: 40, progress: 0.4, updatedAt: 1600 }, 'progress'));
      s.jobs.apply(event(started, 'appeared'));
    });
    s.jobs.apply(event(moved, 'appeared'));
    s.jobs.apply(event(job('running'), 'appeared'));
    await s.jobs.load();
    assert.deepEqual(s.jobs.current.map((e) => e.id), [moved.id, started.id]);
    assert.equal(s.jobs.lost({ ...ref, disk: 'vdb' }), undefined);
    assert.equal(s.jobs.lost({ ...ref, domain: 'db' }), undefined);
    assert.equal(s.jobs.lost(ref)?.id, job('running').id, 'the one shown before and silent since is lost');
  });
});
