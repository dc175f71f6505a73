// The desktop app's main process: one instance, one window, the core behind IPC. It starts like
// `npm run serve` (same data folder checks, same log, same startup failures), shows failures in a
// dialog instead of a terminal line, and holds its quit until the core has closed.
import { app, BrowserWindow, dialog } from 'electron';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { StrataCore } from '../core/api/core.ts';
import { prepareDataDir, startupFailureText } from '../core/storage/data-dir.ts';
import { defaultUri } from '../core/hosts/default-uri.ts';
import { libvirtLogEnv } from '../log/libvirt-log.ts';
import { configureLogging, flushLogs, log } from '../log/logger.ts';
import { appUrlCheck } from './ipc-router.ts';
import { serveIpc } from './ipc.ts';
import { quitGate } from './quit-gate.ts';
import { createMainWindow } from './window.ts';

const outDir = join(dirname(fileURLToPath(import.meta.url)), '..');

function cliOptions(): { uri: string | undefined; verbose: boolean } {
  const { values } = parseArgs({ args: process.argv.slice(1), options: { uri: { type: 'string' }, verbose: { type: 'boolean' } }, strict: false });
  return { uri: typeof values.uri === 'string' ? values.uri : undefined, verbose: values.verbose === true };
}

// STRATA_DATA_DIR moves Chromium's profile too, so a test run leaves the user's folder alone.
if (process.env['STRATA_DATA_DIR']) app.setPath('userData', process.env['STRATA_DATA_DIR']);

let core: StrataCore | null = null;

function cannotStart(err: unknown): void {
  // At info, so the file keeps it too: the dialog is the report for the user.
  log.info('startup failed', { err, stack: err instanceof Error ? err.stack : undefined });
  dialog.showErrorBox('Strata cannot start', startupFailureText(err));
  flushLogs();
  app.exit(2);
}

async function start(): Promise<void> {
  const { uri, verbose } = cliOptions();
  const dataDir = app.getPath('userData');
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
  const win = createMainWindow(outDir);
  const stop = serveIpc(core, win.webContents, appUrlCheck({ outDir, devUrl: process.env['ELECTRON_RENDERER_URL'] }));
  win.on('closed', stop);
  if (core.notices.length > 0) {
    void dialog.showMessageBox(win, { type: 'warning', title: 'Strata', message: 'Strata started afresh', detail: core.notices.join('\n\n') });
  }
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    const win = BrowserWindow.getAllWindows()[0];
    if (win) {
      if (win.isMinimized()) win.restore();
      win.focus();
    }
  });
  app.on('window-all-closed', () => app.quit());
  app.on(
    'will-quit',
    quitGate(
      () => core?.close() ?? Promise.resolve(),
      // exit, not quit: will-quit has run already, and exit skips it rather than asking again.
      (closed) => app.exit(closed ? 0 : 1),
    ),
  );
  void app.whenReady().then(start).catch(cannotStart);
}
