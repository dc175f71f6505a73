// The backup settings as backup.settings gives them, from a real settings file in a temporary data
// folder: the default folder and retention, a remote host's refusal, and a schedule's next run,
// whether it is full, and whether its last run was late (which follows from when it began).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EventHub } from '../../src/main/core/api/event-hub.ts';
import { BackupContext, defaultBackupRoot, type BackupHost } from '../../src/main/core/backup/context.ts';
import { nextDue } from '../../src/main/core/backup/schedule.ts';
import { readSettings } from '../../src/main/core/backup/settings-view.ts';

// readSettings reads only a host's id and URI: a plain value stands for a connected host here.
const host = (uri: string): BackupHost => ({ id: `id-${uri}`, uri, label: uri }) as unknown as BackupHost;
const local = host('qemu:///system');

describe('backup settings as the window reads them', () => {
  let dataDir: string;
  let ctx: BackupContext;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'strata-settings-view-'));
    ctx = new BackupContext({ hub: new EventHub(), hosts: () => [], dataDir });
  });
  after(() => rm(dataDir, { recursive: true, force: true }));

  it('gives the default folder with its free space, the default retention and no schedule', async () => {
    const s = await readSettings(ctx, local, 'vm');
    assert.equal(s.location.location, defaultBackupRoot(dataDir, local.uri));
    assert.equal(s.location.source, 'default');
    assert.equal(s.location.refused, null);
    assert.ok(s.location.freeBytes !== null && s.location.freeBytes > 0, 'the free space of the nearest existing folder');
    assert.deepEqual(s.domain?.retention, { keepSets: 7, keepDays: null, source: 'default' });
    assert.deepEqual(s.domain?.schedule, { domain: 'vm', schedule: null, nextRunAt: null, runs: 0, nextKind: null, lastRun: null });
    assert.equal((await readSettings(ctx, local, undefined)).domain, null);
  });

  it('says why a remote host cannot keep backups, and gives no free space of this machine for it', async () => {
    const s = await readSettings(ctx, host('qemu+ssh://far.example/system'), undefined);
    assert.notEqual(s.location.refused, null);
    assert.equal(s.location.freeBytes, null);
  });

  it('gives a chosen folder and retention as set', async () => {
    await ctx.settings.setLocation(local.uri, '/srv/backups');
    await ctx.settings.setRetention(local.uri, 'vm', { keepSets: null, keepDays: 30 });
    const s = await readSettings(ctx, local, 'vm');
    assert.equal(s.location.location, '/srv/backups');
    assert.equal(s.location.source, 'set');
    assert.deepEqual(s.domain?.retention, { keepSets: null, keepDays: 30, source: 'set' });
  });

  it('gives the next run, whether it is full, and whether the last run was late', async () => {
    // Monday 7 December 2026, 02:30 local time, weekly.
    const due = new Date(2026, 11, 7, 2, 30).getTime();
    const schedule = { every: 'week' as const, at: '02:30', weekday: 1, fullEvery: 2 };
    const setAt = due - 3 * 86_400_000;
    await ctx.settings.setSchedule(local.uri, 'vm', schedule, setAt);
    let s = (await readSettings(ctx, local, 'vm', setAt + 1000)).domain?.schedule;
    assert.equal(s?.nextRunAt, due);
    assert.equal(s?.nextKind, 'full', 'a new schedule begins with a full run');
    assert.equal(s?.lastRun, null, 'setting it is not a run');

    // Strata was stopped at 02:30 and started at 04:00: the run is due now, then runs late.
    const start = due + 90 * 60_000;
    assert.equal((await readSettings(ctx, local, 'vm', start)).domain?.schedule.nextRunAt, start);
    await ctx.settings.ran(local.uri, 'vm', start);
    s = (await readSettings(ctx, local, 'vm', start + 1000)).domain?.schedule;
    assert.deepEqual(s?.lastRun, { at: start, dueAt: due, late: true });
    assert.equal(s?.runs, 1);
    assert.equal(s?.nextKind, 'auto');
    assert.equal(s?.nextRunAt, nextDue(schedule, start + 1000));

    // A week later it runs at its time (within the scheduler's 20 s checks): on time, and full again.
    const nextWeek = new Date(2026, 11, 14, 2, 30, 20).getTime();
    await ctx.settings.ran(local.uri, 'vm', nextWeek);
    s = (await readSettings(ctx, local, 'vm', nextWeek + 1000)).domain?.schedule;
    assert.deepEqual(s?.lastRun, { at: nextWeek, dueAt: new Date(2026, 11, 14, 2, 30).getTime(), late: false });
    assert.equal(s?.nextKind, 'full');
  });
});
