// Closing while jobs run (background or quit, never abort), the tray's menu, the app menu.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job, JobPhase } from '../../src/shared/model.ts';
import { isAllowedExternalUrl } from '../../src/shared/links.ts';
import { appMenu, type MenuItem } from '../../src/main/desktop/app-menu.ts';
import { closeChoice, closePrompt, jobLine, trayMenu, trayTooltip } from '../../src/main/desktop/background.ts';

function job(domain: string, phase: JobPhase, progress: number | null = null): Job {
  return {
    id: `default/${domain}/vda/1`, hostId: 'default', domain, disk: 'vda', type: 'pull', phase, cur: 0, end: 0, progress,
    bandwidthBytesPerSec: 0, requestedBandwidthBytesPerSec: 0, afterReady: null, rateBytesPerSec: null, etaSeconds: null,
    startedAt: 1, updatedAt: 1, endedAt: null, origin: 'strata', outcome: null, leftover: null,
  };
}

describe('closing the window', () => {
  it('asks nothing when no job runs or waits', () => {
    assert.equal(closePrompt([]), null);
    assert.equal(closePrompt([job('a', 'completed', 1), job('b', 'failed')]), null);
  });

  it('with jobs running: says they go on in QEMU, offers the background (first), quit, or cancel', () => {
    const p = closePrompt([job('web', 'running', 0.42), job('db', 'ready', 1), job('old', 'completed', 1)]);
    assert.ok(p);
    assert.equal(p.message, '2 block jobs are still running');
    assert.match(p.detail, /^Pull on web\/vda: 42 %\nPull on db\/vda: ready to pivot\n\n/);
    assert.match(p.detail, /\n\nThey go on in QEMU without Strata: quitting never stops them, and Strata shows them again when it next starts\. Kept in the background/);
    assert.deepEqual(p.buttons, ['Keep in Background', 'Quit', 'Cancel']);
    assert.equal(p.defaultId, 0);
    assert.equal(p.cancelId, 2);
    assert.ok(!p.buttons.some((b) => /abort|stop/i.test(b)), 'no choice aborts the jobs');
    assert.equal(closePrompt([job('web', 'ready', 1)])?.message, 'A block job is still running');
  });

  it('names what a quit ends: the queue, and a remote restore, which only Strata holds', () => {
    const restore: Job = { ...job('far', 'running', 0.1), type: 'restore', engine: 'qemu-img' };
    const mixed = closePrompt([job('web', 'running', 0.42), job('db', 'queued'), restore]);
    assert.match(mixed?.detail ?? '', /\n\nThe others go on in QEMU without Strata, which shows them again when it next starts\. Quitting ends what only Strata holds: the queued job is dropped without starting, and the restore on a remote host is aborted and its partial image removed\. Kept in the background/);
    assert.doesNotMatch(mixed?.detail ?? '', /never stops/);
    const queue = closePrompt([job('a', 'queued'), job('b', 'queued')]);
    assert.match(queue?.detail ?? '', /\n\nQuitting ends what only Strata holds: the 2 queued jobs are dropped without starting\. Kept/);
    assert.doesNotMatch(queue?.detail ?? '', /others/);
  });

  it('names at most five jobs', () => {
    const p = closePrompt(Array.from({ length: 8 }, (_, i) => job(`d${i}`, 'running', 0)));
    assert.match(p?.detail ?? '', /d4\/vda: 0 %\n… and 3 more\n\n/);
  });

  it('maps the dialog’s answer; anything unexpected is a cancel', () => {
    assert.equal(closeChoice(0), 'background');
    assert.equal(closeChoice(1), 'quit');
    assert.equal(closeChoice(2), 'cancel');
    assert.equal(closeChoice(7), 'cancel');
  });
});

describe('the tray', () => {
  it('lists the running jobs (not clickable), then Show and Quit', () => {
    assert.deepEqual(trayMenu([job('web', 'running', 0.5), job('db', 'ready', 1)]), [
      { label: 'Pull on web/vda: 50 %', enabled: false },
      { label: 'Pull on db/vda: ready to pivot', enabled: false },
      { type: 'separator' },
      { label: 'Show Strata', id: 'show' },
      { label: 'Quit Strata', id: 'quit' },
    ]);
    assert.deepEqual(trayMenu([job('x', 'completed', 1)])[0], { label: 'No block jobs running', enabled: false });
    assert.equal(trayTooltip([job('web', 'running', 0.5)]), 'Strata: 1 block job running');
    assert.equal(trayTooltip([]), 'Strata');
  });

  it('says each phase in words; percent rounds down so 100 % means done', () => {
    assert.equal(jobLine(job('a', 'requested')), 'Pull on a/vda: starting');
    assert.equal(jobLine(job('a', 'running', 0.999)), 'Pull on a/vda: 99 %');
    assert.equal(jobLine(job('a', 'pivoting', 1)), 'Pull on a/vda: pivoting');
    assert.equal(jobLine(job('a', 'aborting', 0.3)), 'Pull on a/vda: aborting');
  });
});

function flatten(items: MenuItem[]): MenuItem[] {
  return items.flatMap((i) => ('submenu' in i ? [i, ...flatten(i.submenu)] : [i]));
}

describe('the application menu', () => {
  it('has the usual menus and roles (their shortcuts come with the roles)', () => {
    const menu = appMenu({ dev: false });
    assert.deepEqual(menu.map((m) => ('label' in m ? m.label : '')), ['&File', '&Edit', '&View', '&Window', '&Help']);
    const roles = flatten(menu).flatMap((i) => ('role' in i ? [i.role] : []));
    for (const role of ['quit', 'close', 'undo', 'redo', 'cut', 'copy', 'paste', 'selectAll', 'reload', 'zoomIn', 'zoomOut', 'resetZoom', 'togglefullscreen', 'minimize', 'about'] as const) {
      assert.ok(roles.includes(role), role);
    }
    assert.ok(!roles.includes('toggleDevTools'), 'no developer tools in the app');
    assert.ok(flatten(appMenu({ dev: true })).some((i) => 'role' in i && i.role === 'toggleDevTools'), 'developer tools under the dev server');
  });

  it('links only to allowlisted documentation', () => {
    const links = flatten(appMenu({ dev: false })).flatMap((i) => ('link' in i ? [i.link] : []));
    assert.ok(links.length > 0);
    for (const link of links) assert.ok(isAllowedExternalUrl(link), link);
  });
});
