// The window's security policy as plain data and decisions, so the tests check exactly what the
// Electron glue applies (src/main/electron/harden.ts): Electron's security checklist for a page
// that needs no Node, no remote content, no navigation, no other windows and no permissions but
// notifications.
import { isAllowedExternalUrl } from '../../shared/links.ts';

/** The BrowserWindow's webPreferences. */
export function webPreferences(preload: string) {
  return {
    preload,
    sandbox: true,
    contextIsolation: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    experimentalFeatures: false,
    webviewTag: false,
    navigateOnDragDrop: false,
    // A page cannot flood the user with alert() loops.
    safeDialogs: true,
    spellcheck: false,
  } as const;
}

/** The one permission the page may have, and only on Strata's own page. */
const grantedPermissions: ReadonlySet<string> = new Set(['notifications']);

/**
 * Whether a permission request (or check) is granted: notifications, asked by the top frame of
 * Strata's own page in its main window; everything else (camera, geolocation, clipboard reads,
 * HID, …) is refused, and so is any other window, frame or page.
 */
export function permissionGranted(
  permission: string,
  request: { fromMainWindow: boolean; isMainFrame: boolean; url: string | undefined },
  isAppUrl: (url: string) => boolean,
): boolean {
  return grantedPermissions.has(permission) && request.fromMainWindow && request.isMainFrame && request.url !== undefined && isAppUrl(request.url);
}

export type WindowOpenDecision = { action: 'deny'; openExternally: boolean };

/**
 * A page asks for a new window (target=_blank, window.open): never granted; an allowlisted link
 * (libvirt's and QEMU's documentation) opens in the user's browser instead.
 */
export function windowOpenDecision(url: string): WindowOpenDecision {
  return { action: 'deny', openExternally: isAllowedExternalUrl(url) };
}

/**
 * Whether the window may navigate to `url`: never. The page is one document that routes itself
 * without loading another; anything else (a dropped file, a link, a redirect) would replace
 * Strata with a page the IPC router then refuses, so it is stopped before it loads. Reloading
 * is not a navigation and stays possible.
 */
export function navigationAllowed(_url: string): false {
  return false;
}
