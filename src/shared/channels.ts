// The desktop app's IPC channels, named once: the preload and the main process both import them.
// Two verbs, as in the contract: requests with a reply, and events pushed to the page; plus the
// shell's own events (a notification clicked, a second launch), which are not the core's.
import type { Bridge } from './bridge.ts';

export const channels = {
  /** ipcRenderer.invoke(request, method, params) → Reply */
  request: 'strata:request',
  /** webContents.send(event, name, data) */
  event: 'strata:event',
  /** webContents.send(shell, ShellEvent): from the desktop shell, never from the page. */
  shell: 'strata:shell',
} as const;

/**
 * What the desktop shell asks the page to show. 'show-job': a notification about that job was
 * clicked; 'show-host': a second launch named that host's URI (added first if it was new).
 */
export type ShellEvent =
  | { kind: 'show-job'; jobId: string; hostId: string; domain: string; disk: string }
  | { kind: 'show-host'; hostId: string };

/** The object the desktop app's preload exposes as `window.strata`. */
export interface DesktopBridge extends Bridge {
  /**
   * The shell notifies natively of jobs that complete, fail or become ready (it hears the core's
   * events even with the window hidden), so the page must not show web Notifications too.
   */
  readonly nativeNotifications: true;
  /** Returns a function that stops the listener. */
  onShell(listener: (event: ShellEvent) => void): () => void;
}
