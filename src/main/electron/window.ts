// The main window: sandboxed, isolated, no Node in the page, no new windows, no navigation away.
// Links open in the user's browser only when they are on the allowlist (src/shared/links.ts).
import { BrowserWindow, shell } from 'electron';
import { join } from 'node:path';
import { isAllowedExternalUrl } from '../../shared/links.ts';
import { log } from '../log/logger.ts';

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
    if (isAllowedExternalUrl(url)) {
      shell.openExternal(url).catch((err: unknown) => log.warn('cannot open a link in the browser; the app goes on', { url, err }));
    } else {
      log.warn('refused to open a link that is not on the allowlist', { url });
    }
    return { action: 'deny' };
  });
  win.webContents.on('will-navigate', (event, url) => {
    event.preventDefault();
    log.warn('refused to navigate the window away from Strata', { url });
  });

  const devUrl = process.env['ELECTRON_RENDERER_URL'];
  const loaded = devUrl ? win.loadURL(devUrl) : win.loadFile(join(outDir, 'renderer/index.html'));
  loaded.catch((err: unknown) => log.error('the window cannot load its page', { url: devUrl ?? 'renderer/index.html', err }));
  return win;
}
