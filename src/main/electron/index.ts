// The desktop app's main process: one instance, one window, the core behind IPC. It starts
// through the same boot as `npm run serve` (src/main/boot: data folder, log, core), shows a
// failure in a dialog instead of a terminal line, and holds its quit until the core has closed.
// The decisions live in plain modules (src/main/desktop); this file only wires them to Electron.
import { app, BrowserWindow, dialog, type WebContents } from 'electron';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ShellEvent } from '../../shared/channels.ts';
import type { Job, JobEvent } from '../../shared/model.ts';
import { boot, type Booted } from '../boot/boot.ts';
import { appFlags } from '../boot/flags.ts';
import { StartupError, startupFailureText } from '../core/storage/data-dir.ts';
import { closeChoice, closePrompt } from '../desktop/background.ts';
import { appUrlCheck, sendShellEvent } from '../desktop/ipc-router.ts';
import { LiveJobs } from '../desktop/progress.ts';
import { quitGate } from '../desktop/quit-gate.ts';
import { adoptUri, handOverData, receivedUri } from '../desktop/single-instance.ts';
import { installProbe } from '../desktop/test-probe.ts';
import { readWindowState, windowStateFile, writeWindowState } from '../desktop/window-state.ts';
import { flushLogs, log } from '../log/logger.ts';
import { jobNotice, type JobNotice } from '../desktop/job-notice.ts';
import { hardenApp, hardenSession } from './harden.ts';
import { serveIpc } from './ipc.ts';
import { installAppMenu } from './menu.ts';
import { showNotice } from './notify.ts';
import { BackgroundTray } from './tray.ts';
import { createMainWindow, windowState } from './window.ts';

const outDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const devUrl = process.env['ELECTRON_RENDERER_URL'];
const isAppUrl = appUrlCheck({ outDir, devUrl });
const probe = installProbe(process.env);
const flags = appFlags(process.argv.slice(1));

// Strata's own files (hosts, history, logs, the window's place) live in the data folder that
// `npm run serve` uses too (boot finds it), so both see the same hosts and history. Chromium's
// profile stays in the usual config folder, the same from source and packaged (whose name is
// "Strata"); STRATA_DATA_DIR moves both, so a test run leaves the user's alone.
app.setPath('userData', process.env['STRATA_DATA_DIR'] || join(app.getPath('appData'), 'strata'));
// Docks that show a progress bar find the app by its desktop entry (the packages install this one).
app.setDesktopName('strata.desktop');

function icon(size: number): string {
  return join(app.getAppPath(), `resources/icons/${size}x${size}.png`);
}

let booted: Booted | null = null;
let win: BrowserWindow | null = null;
let tray: BackgroundTray | null = null;
let quitting = false;
let savingWindow: Promise<void> = Promise.resolve();
const live = new LiveJobs();
let shownProgress: number | null = null;

function cannotStart(err: unknown): void {
  // boot has logged its own failures (StartupErrors); anything else is logged here. At info, so
  // the file keeps it too: the dialog is the report for the user.
  if (!(err instanceof StartupError)) log.info('startup failed', { err, stack: err instanceof Error ? err.stack : undefined });
  dialog.showErrorBox('Strata cannot start', startupFailureText(err));
  flushLogs();
  app.exit(2);
}

function showWindow(): void {
  if (!win || win.isDestroyed()) return;
  if (win.isMinimized()) win.restore();
  win.show();
  win.focus();
}

function tellPage(event: ShellEvent): void {
  probe?.shellEvents.push(event);
  if (win && !win.isDestroyed()) sendShellEvent(win.webContents, event);
}

function noticeClicked(notice: JobNotice): void {
  showWindow();
  tellPage({ kind: 'show-job', jobId: notice.jobId, hostId: notice.hostId, domain: notice.domain, disk: notice.disk });
}

function showProgress(): void {
  const value = live.progress();
  // Per mille is finer than any taskbar draws; ticks that do not move it are not passed on.
  const rounded = Math.round(value * 1000) / 1000;
  if (rounded === shownProgress || !win || win.isDestroyed()) return;
  shownProgress = rounded;
  win.setProgressBar(rounded);
  probe?.progress.push(rounded);
}

function onJob(job: JobEvent): void {
  live.update(job);
  showProgress();
  tray?.update(live.list());
  const notice = jobNotice(job);
  if (notice) {
    probe?.notices.push(notice);
    showNotice(notice, icon(256), noticeClicked);
  }
}

function enterBackground(): void {
  tray ??= new BackgroundTray(icon(32), { show: showWindow, quit: () => app.quit() });
  tray.update(live.list());
  win?.hide();
}

/** Closing asks first while jobs run; see src/main/desktop/background.ts. */
function onClose(event: { preventDefault(): void }): void {
  if (win && booted) {
    const state = windowState(win);
    savingWindow = writeWindowState(windowStateFile(booted.dataDir), state).catch((err: unknown) => log.warn('cannot remember the window’s place', { err }));
  }
  if (quitting) return;
  const prompt = closePrompt(live.list());
  if (prompt === null) return;
  event.preventDefault();
  // Chosen once, the background stays the answer for this run.
  if (tray) {
    win?.hide();
    return;
  }
  if (!win) return;
  void dialog.showMessageBox(win, prompt).then(({ response }) => {
    const choice = closeChoice(response);
    log.info('the window was closed while jobs run', { choice, jobs: live.list().length });
    if (choice === 'background') enterBackground();
    else if (choice === 'quit') app.quit();
  });
}

async function start(): Promise<void> {
  try {
    booted = await boot(flags, 'the desktop app');
  } catch (err) {
    cannotStart(err);
    return;
  }
  const { core: theCore, dataDir } = booted;
  installAppMenu(devUrl !== undefined);
  hardenSession(isAppUrl, (contents: WebContents | null) => contents !== null && win !== null && !win.isDestroyed() && contents === win.webContents);

  // Listen before reading the jobs, so none falls between the read and the events.
  theCore.hub.on((event, data) => {
    if (event === 'job') onJob(data as JobEvent);
  });
  const listed = await theCore.dispatcher.handle('jobs.list', {});
  if (listed.ok) for (const job of listed.result as Job[]) live.update(job);

  win = createMainWindow({ outDir, saved: await readWindowState(windowStateFile(dataDir)), icon: icon(256) });
  const stop = serveIpc(theCore, win.webContents, isAppUrl);
  win.on('close', onClose);
  win.on('closed', () => {
    stop();
    win = null;
  });
  showProgress();
  if (theCore.startupWarnings.length > 0) {
    void dialog.showMessageBox(win, { type: 'warning', title: 'Strata', message: 'Strata started afresh', detail: theCore.startupWarnings.join('\n\n') });
  }
}

async function secondLaunch(additionalData: unknown, argv: string[]): Promise<void> {
  showWindow();
  const uri = receivedUri(additionalData, argv);
  if (uri === null || !booted) return;
  const adopted = await adoptUri(uri, booted.core.dispatcher);
  if (!adopted.ok) {
    log.warn('a second launch named a host that cannot be added', { uri, why: adopted.message });
    if (win && !win.isDestroyed()) void dialog.showMessageBox(win, { type: 'warning', title: 'Strata', message: `Cannot add ${uri}`, detail: adopted.message });
    return;
  }
  log.info('a second launch handed over a host', { uri, added: adopted.added });
  tellPage(adopted.event);
}

hardenApp();
if (!app.requestSingleInstanceLock(handOverData(flags))) {
  app.quit();
} else {
  app.on('second-instance', (_event, argv, _cwd, additionalData) => {
    secondLaunch(additionalData, argv).catch((err: unknown) => log.warn('cannot take over a second launch', { err }));
  });
  app.on('before-quit', () => {
    quitting = true;
    tray?.destroy();
    tray = null;
  });
  app.on('window-all-closed', () => app.quit());
  app.on(
    'will-quit',
    quitGate(
      async () => {
        await savingWindow;
        await (booted?.core.close() ?? Promise.resolve());
      },
      // exit, not quit: will-quit has run already, and exit skips it rather than asking again.
      (closed) => app.exit(closed ? 0 : 1),
    ),
  );
  void app.whenReady().then(start).catch(cannotStart);
}
