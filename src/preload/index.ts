// Exposes one object to the page: requests and events of the contract, never ipcRenderer.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { Bridge, Reply } from '../shared/bridge.ts';
import { channels } from '../shared/channels.ts';
import type { EventName } from '../shared/contract.ts';

const bridge: Bridge = {
  request: (method: string, params: unknown): Promise<Reply> => ipcRenderer.invoke(channels.request, method, params),
  onEvent(listener: (event: EventName, data: unknown) => void): () => void {
    const handler = (_e: IpcRendererEvent, event: EventName, data: unknown): void => listener(event, data);
    ipcRenderer.on(channels.event, handler);
    return () => ipcRenderer.removeListener(channels.event, handler);
  },
};

contextBridge.exposeInMainWorld('strata', bridge);
