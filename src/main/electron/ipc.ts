// The Electron transport: one invoke channel for requests and one push channel for events, a
// thin adapter over the core's dispatcher. Only the window's own top frame may call.
import { ipcMain, type IpcMainInvokeEvent, type WebContents } from 'electron';
import type { StrataCore } from '../core/api/core.ts';

export const requestChannel = 'strata:request';
export const eventChannel = 'strata:event';

function trusted(event: IpcMainInvokeEvent, contents: WebContents): boolean {
  const frame = event.senderFrame;
  return event.sender === contents && frame !== null && frame === contents.mainFrame;
}

export function serveIpc(core: Pick<StrataCore, 'dispatcher' | 'hub'>, contents: WebContents): () => void {
  ipcMain.handle(requestChannel, async (event, method: unknown, params: unknown) => {
    if (!trusted(event, contents)) {
      return { ok: false, error: { kind: 'invalid-request', message: 'refused: not from the Strata window', hint: null, libvirt: null, issues: [] } };
    }
    return core.dispatcher.handle(method, params);
  });
  const stop = core.hub.on((event, data) => {
    if (!contents.isDestroyed()) contents.send(eventChannel, event, data);
  });
  return () => {
    stop();
    ipcMain.removeHandler(requestChannel);
  };
}
