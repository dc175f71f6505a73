// Exposes one object to the page: requests and events of the contract, the shell's events, and
// the flag that says notifications are the shell's; never ipcRenderer.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { Reply } from '../shared/bridge.ts';
import { channels, type DesktopBridge, type ShellEvent } from '../shared/channels.ts';
import type { EventName } from '../shared/contract.ts';

const bridge: DesktopBridge = {
  request: (method: string, params: unknown): Promise<Reply> => ipcRenderer.invoke(channels.request, method, params),
  onEvent(listener: (event: EventName, data: unknown) => void): () => void {
    const handler = (_e: IpcRendererEvent, event: EventName, data: unknown): void => listener(event, data);
    ipcRenderer.on(channels.event, handler);
    return () => ipcRenderer.removeListener(channels.event, handler);
  },
  nativeNotifications: true,
  onShell(listener: (event: ShellEvent) => void): () => void {
    const handler = (_e: IpcRendererEvent, event: ShellEvent): void => listener(event);
    ipcRenderer.on(channels.shell, handler);
    return () => ipcRenderer.removeListener(channels.shell, handler);
  },
};

contextBridge.exposeInMainWorld('strata', bridge);
