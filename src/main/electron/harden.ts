// Applies the window policy (src/main/desktop/window-policy.ts) to Electron: every renderer
// sandboxed, every webContents refused navigation, new windows and <webview>, the session
// refusing permissions but notifications for Strata's page, and the shared Content-Security-Policy
// sent as a header on top of the page's meta tag.
import { app, session, shell, type WebContents } from 'electron';
import { contentSecurityPolicyHeader } from '../../shared/csp.ts';
import { log } from '../log/logger.ts';
import { navigationAllowed, permissionGranted, windowOpenDecision } from '../desktop/window-policy.ts';

/** Before `ready`: sandbox every renderer, whatever its webPreferences say. */
export function hardenApp(): void {
  app.enableSandbox();
  app.on('web-contents-created', (_event, contents) => hardenContents(contents));
}

function hardenContents(contents: WebContents): void {
  contents.setWindowOpenHandler(({ url }) => {
    const decision = windowOpenDecision(url);
    if (decision.openExternally) {
      shell.openExternal(url).catch((err: unknown) => log.warn('cannot open a link in the browser; the app goes on', { url, err }));
    } else {
      log.warn('refused to open a window or a link that is not on the allowlist', { url });
    }
    return { action: decision.action };
  });
  contents.on('will-frame-navigate', (event) => {
    if (navigationAllowed(event.url)) return;
    event.preventDefault();
    log.warn('refused to navigate away from Strata', { url: event.url, mainFrame: event.isMainFrame });
  });
  contents.on('will-attach-webview', (event) => {
    event.preventDefault();
    log.warn('refused to attach a <webview>');
  });
}

/** After `ready`: the default session's permission handlers and the CSP header. */
export function hardenSession(isAppUrl: (url: string) => boolean, isMainWindow: (contents: WebContents | null) => boolean): void {
  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((contents, permission, callback, details) => {
    const granted = permissionGranted(permission, { fromMainWindow: isMainWindow(contents), isMainFrame: details.isMainFrame, url: details.requestingUrl }, isAppUrl);
    if (!granted) log.warn('refused a permission request', { permission, url: details.requestingUrl });
    callback(granted);
  });
  ses.setPermissionCheckHandler((contents, permission, _origin, details) =>
    permissionGranted(permission, { fromMainWindow: isMainWindow(contents), isMainFrame: details.isMainFrame, url: details.requestingUrl }, isAppUrl),
  );
  // The page's own meta tag already holds the policy; the header also covers the dev server's
  // responses and says what a meta tag cannot (frame-ancestors).
  ses.webRequest.onHeadersReceived((details, callback) => {
    if (!isAppUrl(details.url)) {
      callback({});
      return;
    }
    const headers = Object.fromEntries(Object.entries(details.responseHeaders ?? {}).filter(([name]) => name.toLowerCase() !== 'content-security-policy'));
    callback({ responseHeaders: { ...headers, 'Content-Security-Policy': [contentSecurityPolicyHeader] } });
  });
}
