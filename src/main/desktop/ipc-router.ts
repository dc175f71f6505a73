// The desktop app's IPC, without Electron: one request channel and one event channel over the
// core's dispatcher, and a channel on which the shell itself tells the page what to show. The
// page only ever invokes the request channel. Only the window's own top frame, showing Strata's
// own page, may call; any other sender gets the same error envelope the WebSocket uses.
// Electron's ipcMain and webContents are passed in (src/main/electron/ipc.ts), so this runs, and
// is tested, in plain Node.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Reply } from '../../shared/bridge.ts';
import { channels, type ShellEvent } from '../../shared/channels.ts';
import type { EventName } from '../../shared/contract.ts';
import { StrataError } from '../../shared/errors.ts';
import { log } from '../log/logger.ts';

/** What the router reads of Electron's WebFrameMain. */
export interface FrameLike {
  readonly url: string;
  readonly parent: FrameLike | null;
}

/** What the router reads of Electron's IpcMainInvokeEvent. */
export interface InvokeEventLike {
  readonly sender: unknown;
  readonly senderFrame: FrameLike | null;
}

/** What the router uses of Electron's ipcMain. */
export interface IpcMainLike<E extends InvokeEventLike> {
  handle(channel: string, listener: (event: E, ...args: unknown[]) => Promise<Reply>): void;
  removeHandler(channel: string): void;
}

/** What the router uses of the window's webContents. */
export interface ContentsLike {
  readonly mainFrame: FrameLike;
  isDestroyed(): boolean;
  send(channel: string, ...args: unknown[]): void;
}

/** The core as the router sees it. */
export interface IpcCore {
  dispatcher: { handle(method: unknown, params: unknown): Promise<Reply> };
  hub: { on(listener: (event: EventName, data: unknown) => void): () => void };
}

/**
 * Which page URLs are Strata's own: the built renderer's index.html (file://), or in development
 * any page of the dev server electron-vite names in ELECTRON_RENDERER_URL.
 */
export function appUrlCheck(options: { outDir: string; devUrl?: string | undefined }): (url: string) => boolean {
  if (options.devUrl) {
    const origin = new URL(options.devUrl).origin;
    return (url) => URL.canParse(url) && new URL(url).origin === origin;
  }
  const index = pathToFileURL(join(options.outDir, 'renderer/index.html'));
  // The query and fragment are the page's own business; the file is what identifies it.
  return (url) => URL.canParse(url) && new URL(url).protocol === 'file:' && new URL(url).pathname === index.pathname;
}

/** Why a request is refused, or null when it comes from the window's top frame on Strata's page. */
export function refusal(event: InvokeEventLike, contents: ContentsLike, isAppUrl: (url: string) => boolean): string | null {
  if (event.sender !== contents) return 'not from the Strata window';
  const frame = event.senderFrame;
  if (frame === null) return 'the sending frame has gone (navigated or closed)';
  if (frame.parent !== null) return 'from a sub-frame, not the window itself';
  if (frame !== contents.mainFrame) return "not from the window's main frame";
  if (!isAppUrl(frame.url)) return `from a page that is not Strata's own (${frame.url})`;
  return null;
}

/** Serves the window's requests and pushes the core's events to it; returns a function that stops both. */
export function serveIpc<E extends InvokeEventLike>(
  core: IpcCore,
  ipc: IpcMainLike<E>,
  contents: ContentsLike,
  isAppUrl: (url: string) => boolean,
): () => void {
  ipc.handle(channels.request, async (event, method, params) => {
    const why = refusal(event, contents, isAppUrl);
    if (why === null) return core.dispatcher.handle(method, params);
    log.warn('IPC request refused', { why, method: typeof method === 'string' ? method : undefined });
    return { ok: false, error: new StrataError('invalid-request', `refused: ${why}`).toEnvelope() };
  });
  const stop = core.hub.on((event, data) => {
    if (!contents.isDestroyed()) contents.send(channels.event, event, data);
  });
  return () => {
    stop();
    ipc.removeHandler(channels.request);
  };
}

/** Sends the page a shell event (a notification clicked, a host handed over by a second launch). */
export function sendShellEvent(contents: ContentsLike, event: ShellEvent): boolean {
  if (contents.isDestroyed()) return false;
  contents.send(channels.shell, event);
  return true;
}
