// What the preload exposes to the renderer: one object, never ipcRenderer itself.
import type { DesktopBridge } from '../shared/channels.ts';

declare global {
  interface Window {
    /** Present in the desktop app; absent in a browser, which uses the WebSocket instead. */
    strata?: DesktopBridge;
  }
}

export {};
