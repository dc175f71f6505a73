// The window's hardening as the Electron glue applies it: webPreferences, permissions,
// navigation, new windows, and the Content-Security-Policy shared with the headless page.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { repoRoot } from '../../scripts/electron-binary.mjs';
import { contentSecurityPolicy, contentSecurityPolicyHeader } from '../../src/shared/csp.ts';
import { appUrlCheck } from '../../src/main/desktop/ipc-router.ts';
import { navigationAllowed, permissionGranted, webPreferences, windowOpenDecision } from '../../src/main/desktop/window-policy.ts';

const outDir = '/opt/strata/out';
const page = `${pathToFileURL(join(outDir, 'renderer/index.html')).href}#/jobs`;
const isAppUrl = appUrlCheck({ outDir });

describe('webPreferences', () => {
  it('sandboxed, isolated, no Node anywhere, no webview, web security on, the bundled preload', () => {
    const prefs = webPreferences('/opt/strata/out/preload/index.cjs');
    assert.deepEqual(prefs, {
      preload: '/opt/strata/out/preload/index.cjs',
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
      safeDialogs: true,
      spellcheck: false,
    });
    assert.ok(!('enableBlinkFeatures' in prefs) && !('additionalArguments' in prefs));
  });
});

describe('permissions', () => {
  const main = { fromMainWindow: true, isMainFrame: true, url: page };

  it('grants notifications to Strata’s page in its main window', () => {
    assert.equal(permissionGranted('notifications', main, isAppUrl), true);
  });

  it('refuses every other permission, even to Strata’s page', () => {
    for (const p of ['media', 'geolocation', 'clipboard-read', 'clipboard-sanitized-write', 'hid', 'usb', 'serial', 'midiSysex', 'openExternal', 'fullscreen', 'pointerLock', 'display-capture', 'unknown']) {
      assert.equal(permissionGranted(p, main, isAppUrl), false, p);
    }
  });

  it('refuses notifications to another window, a sub-frame, another page, or an unknown URL', () => {
    assert.equal(permissionGranted('notifications', { ...main, fromMainWindow: false }, isAppUrl), false);
    assert.equal(permissionGranted('notifications', { ...main, isMainFrame: false }, isAppUrl), false);
    assert.equal(permissionGranted('notifications', { ...main, url: 'https://example.com/' }, isAppUrl), false);
    assert.equal(permissionGranted('notifications', { ...main, url: 'file:///tmp/index.html' }, isAppUrl), false);
    assert.equal(permissionGranted('notifications', { ...main, url: undefined }, isAppUrl), false);
  });
});

describe('navigation and new windows', () => {
  it('never navigates, not even to Strata’s own page or an allowlisted site', () => {
    for (const url of [page, 'https://libvirt.org/', 'https://example.com/', 'file:///etc/passwd', 'javascript:alert(1)', 'data:text/html,hi']) {
      assert.equal(navigationAllowed(url), false, url);
    }
  });

  it('never opens a window; allowlisted documentation goes to the user’s browser', () => {
    assert.deepEqual(windowOpenDecision('https://libvirt.org/kbase/backing_chains.html'), { action: 'deny', openExternally: true });
    for (const url of ['https://example.com/', 'http://libvirt.org/', page, 'about:blank', 'javascript:void(0)']) {
      assert.deepEqual(windowOpenDecision(url), { action: 'deny', openExternally: false }, url);
    }
  });
});

function directives(policy: string): Map<string, string[]> {
  return new Map(
    policy
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name, ...values]) => [name!, values]),
  );
}

describe('Content-Security-Policy', () => {
  const d = directives(contentSecurityPolicy);

  it('denies by default and allows only the page’s own origin for what it loads', () => {
    assert.deepEqual(d.get('default-src'), ["'none'"]);
    assert.deepEqual(d.get('script-src'), ["'self'"]);
    assert.deepEqual(d.get('connect-src'), ["'self'"], 'the headless WebSocket back to its own server only');
    assert.deepEqual(d.get('img-src'), ["'self'", 'data:']);
    assert.deepEqual(d.get('base-uri'), ["'none'"]);
    assert.deepEqual(d.get('form-action'), ["'none'"]);
  });

  it('allows no inline script, eval, remote host or wildcard anywhere', () => {
    for (const [name, values] of d) {
      for (const v of values) {
        assert.ok(!/unsafe-eval|wasm-unsafe-eval|\*|^https?:|^ws:|^wss:|^blob:|^filesystem:/.test(v), `${name} ${v}`);
        if (v === "'unsafe-inline'") assert.equal(name, 'style-src', 'inline styles only (Svelte sets style attributes)');
      }
    }
  });

  it('the header is the same policy plus what only a header can say', () => {
    assert.equal(contentSecurityPolicyHeader, `${contentSecurityPolicy}; frame-ancestors 'none'`);
  });

  // The build writes the shared policy into the page's meta tag (electron.config.ts); `npm test`
  // builds before it tests, so the built page is there to check.
  it('is the policy in the page’s meta tag, put there by the build', async () => {
    const source = await readFile(join(repoRoot, 'src/renderer/index.html'), 'utf8');
    assert.match(source, /http-equiv="Content-Security-Policy"\s+content="%STRATA_CSP%"/);
    const built = await readFile(join(repoRoot, 'out/renderer/index.html'), 'utf8');
    const meta = /<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]*)"/i.exec(built)?.[1];
    assert.equal(meta, contentSecurityPolicy);
  });
});
