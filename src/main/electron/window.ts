// The main window: placed where it was last time (moved onto a screen if that one is gone),
// sandboxed and isolated with the window policy's webPreferences; harden.ts refuses navigation and
// new windows for every webContents.
import { BrowserWindow, screen } from 'electron';
import { join } from 'node:path';
import { log } from '../log/logger.ts';
import { webPreferences } from '../desktop/window-policy.ts';
import { minSize, placeWindow, type WindowState } from '../desktop/window-state.ts';

export function createMainWindow(options: { outDir: string; saved: WindowState | null; icon: string }): BrowserWindow {
  const place = placeWindow(
    options.saved,
    screen.getAllDisplays().map((d) => d.workArea),
    screen.getPrimaryDisplay().workArea,
  );
  const win = new BrowserWindow({
    ...place.bounds,
    minWidth: minSize.width,
    minHeight: minSize.height,
    title: 'Strata',
    icon: options.icon,
    show: false,
    webPreferences: webPreferences(join(options.outDir, 'preload/index.cjs')),
  });
  if (place.maximized) win.maximize();
  win.once('ready-to-show', () => win.show());

  const devUrl = process.env['ELECTRON_RENDERER_URL'];
  const loaded = devUrl ? win.loadURL(devUrl) : win.loadFile(join(options.outDir, 'renderer/index.html'));
  loaded.catch((err: unknown) => log.error('the window cannot load its page', { url: devUrl ?? 'renderer/index.html', err }));
  return win;
}

/** The window's state to remember: its normal (unmaximized) bounds and whether it is maximized. */
export function windowState(win: BrowserWindow): WindowState {
  return { bounds: win.getNormalBounds(), maximized: win.isMaximized() };
}
