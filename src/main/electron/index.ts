// The desktop app's main process: one instance, one window, the core behind IPC.
import { app, BrowserWindow } from 'electron';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createCore, type StrataCore } from '../core/api/core.ts';
import { defaultUri } from '../core/hosts/default-uri.ts';
import { serveIpc } from './ipc.ts';
import { createMainWindow } from './window.ts';

const outDir = join(dirname(fileURLToPath(import.meta.url)), '..');

function cliUri(): string | undefined {
  const { values } = parseArgs({ args: process.argv.slice(1), options: { uri: { type: 'string' } }, strict: false });
  return typeof values.uri === 'string' ? values.uri : undefined;
}

let core: StrataCore | null = null;

async function openWindow(): Promise<void> {
  if (!core) return;
  const win = createMainWindow(outDir);
  const stop = serveIpc(core, win.webContents);
  win.on('closed', stop);
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
  app.on('will-quit', () => {
    void core?.close();
  });
  void app.whenReady().then(async () => {
    core = await createCore({ uri: defaultUri(cliUri()), dataDir: app.getPath('userData') });
    await openWindow();
  });
}
