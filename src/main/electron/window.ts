// The main window: sandboxed, isolated, no Node in the page, no new windows, no navigation away.
import { BrowserWindow, shell } from 'electron';
import { join } from 'node:path';

export function createMainWindow(outDir: string): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 720,
    minHeight: 480,
    title: 'Strata',
    show: false,
    webPreferences: {
      preload: join(outDir, 'preload/index.cjs'),
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https://')) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.webContents.on('will-navigate', (event) => event.preventDefault());

  const devUrl = process.env['ELECTRON_RENDERER_URL'];
  if (devUrl) void win.loadURL(devUrl);
  else void win.loadFile(join(outDir, 'renderer/index.html'));
  return win;
}
