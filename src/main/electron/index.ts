// The desktop app's main process: one instance, one window, the core behind IPC. It starts like
// `npm run serve` (same data folder checks, same log, same startup failures), shows failures in a
// dialog instead of a terminal line, and holds its quit until the core has closed. The decisions
// live in plain modules (src/main/shell, ipc-router.ts, quit-gate.ts); this file only wires them
// to Electron.
import { app, BrowserWindow, dialog, type WebContents } from 'electron';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ShellEvent } from '../../shared/channels.ts';
import type { Job } from '../../shared/model.ts';
import type { StrataCore } from '../core/api/core.ts';
import { defaultUri } from '../core/hosts/default-uri.ts';
import { defaultDataDir, prepareDataDir, startupFailureText } from '../core/storage/data-dir.ts';
import { libvirtLogEnv } from '../log/libvirt-log.ts';
import { configureLogging, flushLogs, log } from '../log/logger.ts';
import { closeChoice, closePrompt } from '../shell/background.ts';
import { JobNotifier, type JobNotice } from '../shell/job-notice.ts';
import { LiveJobs } from '../shell/progress.ts';
import { adoptUri, cliOptions, handOverData, receivedUri } from '../shell/single-instance.ts';
import { installProbe } from '../shell/test-probe.ts';
import { readWindowState, windowStateFile, writeWindowState } from '../shell/window-state.ts';
import { appUrlCheck, sendShellEvent } from './ipc-router.ts';
import { serveIpc } from './ipc.ts';
import { installAppMenu } from './menu.ts';
import { showNotice } from './notify.ts';
import { quitGate } from './quit-gate.ts';
import { hardenApp, hardenSession } from './security.ts';
import { BackgroundTray } from './tray.ts';
import { createMainWindow, windowState } from './window.ts';

const outDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const devUrl = process.env['ELECTRON_RENDERER_URL'];
const isAppUrl = appUrlCheck({ outDir, devUrl });
const probe = installProbe(process.env);

// Strata's own files (hosts, history, logs, the window's place) live in the data folder that
// `npm run serve` uses too, so both see the same hosts and history. Chromium's profile stays in
// the usual config folder, the same from source and packaged (whose name is "Strata");
// STRATA_DATA_DIR moves both, so a test run leaves the user's alone.
const dataDir = defaultDataDir();
app.setPath('userData', process.env['STRATA_DATA_DIR'] || join(app.getPath('appData'), 'strata'));
// Docks that show a progress bar find the app by its desktop entry (the packages install this one).
app.setDesktopName('strata.desktop');

function icon(size: number): string {
  return join(app.getAppPath(), `resources/icons/${size}x${size}.png`);
}

let core: StrataCore | null = null;
let win: BrowserWindow | null = null;
let tray: BackgroundTray | null = null;
let quitting = false;
let savingWindow: Promise<void> = Promise.resolve();
const live = new LiveJobs();
const notifier = new JobNotifier();
let shownProgress: number | null = null;

function cannotStart(err: unknown): void {
  // At info, so the file keeps it too: the dialog is the report for the user.
  log.info('startup failed', { err, stack: err instanceof Error ? err.stack : undefined });
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

function onJob(job: Job): void {
  live.update(job);
  showProgress();
  tray?.update(live.list());
  const notice = notifier.onJob(job);
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

/** Closing asks first while jobs run; see src/main/shell/background.ts. */
function onClose(event: { preventDefault(): void }): void {
  if (win) {
    const state = windowState(win);
    savingWindow = writeWindowState(windowStateFile(dataDir), state).catch((err: unknown) => log.warn('cannot remember the window’s place', { err }));
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
  const { uri, verbose } = cliOptions(process.argv.slice(1));
  try {
    await prepareDataDir(dataDir);
  } catch (err) {
    cannotStart(err);
    return;
  }
  const logFile = configureLogging({ dataDir, verbose });
  if (verbose) {
    const libvirt = libvirtLogEnv(dataDir);
    Object.assign(process.env, libvirt.set);
    log.debug(libvirt.note);
  }
  log.info('starting the desktop app', { dataDir, logFile, pid: process.pid });
  try {
    // Imported here, not at the top: a missing addon must reach the dialog, not crash the import.
    const { createCore } = await import('../core/api/core.ts');
    core = await createCore({ uri: defaultUri(uri), dataDir });
  } catch (err) {
    cannotStart(err);
    return;
  }
  const theCore = core;
  installAppMenu(devUrl !== undefined);
  hardenSession(isAppUrl, (contents: WebContents | null) => contents !== null && win !== null && !win.isDestroyed() && contents === win.webContents);

  // Listen before reading the jobs, so none falls between the read and the events.
  theCore.hub.on((event, data) => {
    if (event === 'job') onJob(data as Job);
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
  if (theCore.notices.length > 0) {
    void dialog.showMessageBox(win, { type: 'warning', title: 'Strata', message: 'Strata started afresh', detail: theCore.notices.join('\n\n') });
  }
}

async function secondLaunch(additionalData: unknown, argv: string[]): Promise<void> {
  showWindow();
  const uri = receivedUri(additionalData, argv);
  if (uri === null || !core) return;
  const adopted = await adoptUri(uri, core.dispatcher);
  if (!adopted.ok) {
    log.warn('a second launch named a host that cannot be added', { uri, why: adopted.message });
    if (win && !win.isDestroyed()) void dialog.showMessageBox(win, { type: 'warning', title: 'Strata', message: `Cannot add ${uri}`, detail: adopted.message });
    return;
  }
  log.info('a second launch handed over a host', { uri, added: adopted.added });
  tellPage(adopted.event);
}

hardenApp();
if (!app.requestSingleInstanceLock(handOverData(process.argv.slice(1)))) {
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
        await (core?.close() ?? Promise.resolve());
      },
      // exit, not quit: will-quit has run already, and exit skips it rather than asking again.
      (closed) => app.exit(closed ? 0 : 1),
    ),
  );
  void app.whenReady().then(start).catch(cannotStart);
}
