// A schedule missed while Strata was not running runs once at the next start, and its backup says
// it was late; the times a schedule is due, worked out without waiting for them.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTraversable } from '../../src/main/core/lab/images.ts';
import { dueRun, lastDue, nextDue } from '../../src/main/core/backup/schedule.ts';
import { startTestCore } from '../core/core-harness.ts';
import { libvirt, sweepStaleLabDomains, TEST_URI, useLabDomain, type Connection } from '../lab/harness.ts';
import { hostId, settled } from './backup-harness.ts';
import type { BackupEvents } from '../../src/shared/backup.ts';
import { waitFor } from '../lab/harness.ts';

const hour = 3_600_000;
const day = 24 * hour;

describe('backup schedules', { timeout: 300_000 }, () => {
  let conn: Connection;

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
  });
  after(async () => {
    await conn?.close();
  });

  it('works out when a daily or weekly schedule is due, and a missed run is due once', () => {
    const now = new Date(2026, 11, 3, 10, 0).getTime(); // a Thursday
    const daily = { every: 'day' as const, at: '03:00', weekday: 0, fullEvery: 7 };
    assert.equal(lastDue(daily, now), new Date(2026, 11, 3, 3, 0).getTime());
    assert.equal(nextDue(daily, now), new Date(2026, 11, 4, 3, 0).getTime());
    const weekly = { ...daily, every: 'week' as const, weekday: 1 };
    assert.equal(lastDue(weekly, now), new Date(2026, 10, 30, 3, 0).getTime());
    assert.equal(nextDue(weekly, now), new Date(2026, 11, 7, 3, 0).getTime());
    // Stopped for three days: one run is due, late; once it ran, none is.
    assert.deepEqual(dueRun(daily, now - 3 * day, now), { due: lastDue(daily, now), late: true });
    assert.equal(dueRun(daily, now, now + hour), null);
    assert.deepEqual(dueRun(daily, new Date(2026, 11, 3, 2, 59).getTime(), new Date(2026, 11, 3, 3, 0, 30).getTime()), {
      due: new Date(2026, 11, 3, 3, 0).getTime(),
      late: false,
    });
  });

  it('a daily backup missed while Strata was stopped runs once at start and says it was late', async (ctx) => {
    const lab = await useLabDomain(ctx, conn, { tag: 'schedule' });
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-schedule-data-'));
    const folder = await mkdtemp(join(tmpdir(), 'strata-schedule-backups-'));
    await makeTraversable(folder);
    ctx.after(() => Promise.all([rm(dataDir, { recursive: true, force: true }), rm(folder, { recursive: true, force: true })]));
    const now = Date.now();
    const at = new Date(now - hour);
    const hhmm = `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
    // As a Strata that last ran two days ago left it.
    const settings = {
      version: 1,
      locations: [{ uri: TEST_URI, path: folder }],
      retention: [],
      schedules: [{ uri: TEST_URI, domain: lab.name, every: 'day', at: hhmm, weekday: 0, fullEvery: 7, lastRunAt: now - 2 * day, runs: 3 }],
    };
    await writeFile(join(dataDir, 'backups.json'), JSON.stringify(settings));

    const t = await startTestCore({ uri: TEST_URI, dataDir });
    ctx.after(() => t.close());
    const began = await waitFor(
      () => t.events.map((e) => (e.event === 'backup.changed' ? (e.data as BackupEvents['backup.changed']) : null)).find((d) => d?.domain === lab.name && d.status === 'running'),
      { timeoutMs: 60_000, what: 'the missed scheduled backup to start' },
    );
    const set = await settled(t, lab.name, began.setId, began.point ?? 0);
    assert.equal(set.good, true);
    assert.equal(set.points.length, 1);
    assert.match(set.points[0]!.reason ?? '', /run late: Strata was not running then/);
    // The fourth run of a schedule that takes a full backup every 7th run: incremental where it can, full here (no set yet).
    assert.equal(set.points[0]!.kind, 'full');
    const saved = JSON.parse(await readFile(join(dataDir, 'backups.json'), 'utf8')) as { schedules: { runs: number; lastRunAt: number }[] };
    assert.equal(saved.schedules[0]?.runs, 4);
    assert.ok((saved.schedules[0]?.lastRunAt ?? 0) >= now);
    assert.equal((await t.client.call('backup.list', { hostId, domain: lab.name })).length, 1, 'it ran once');
  });
});
