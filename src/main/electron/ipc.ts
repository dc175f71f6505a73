// Electron's side of the IPC: the real ipcMain and the window's webContents, handed to the router
// (src/main/desktop/ipc-router.ts), which holds every check.
import { ipcMain, type IpcMainInvokeEvent, type WebContents } from 'electron';
import { serveIpc as route, type IpcCore } from '../desktop/ipc-router.ts';

export function serveIpc(core: IpcCore, contents: WebContents, isAppUrl: (url: string) => boolean): () => void {
  return route<IpcMainInvokeEvent>(core, ipcMain, contents, isAppUrl);
}
