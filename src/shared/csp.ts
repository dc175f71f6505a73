// The Content-Security-Policy of Strata's page, in the desktop app and in the browser alike.
// Nothing is loaded from elsewhere: scripts, styles, images and fonts come from the page's own
// origin (the built files), and the only connection is the headless mode's WebSocket back to the
// server that served the page ('self' covers ws: to the same host and port in Chromium). Inline
// styles stay allowed because Svelte sets style attributes; inline scripts and eval do not.

const directives: readonly (readonly [string, string])[] = [
  ['default-src', "'none'"],
  ['script-src', "'self'"],
  ['style-src', "'self' 'unsafe-inline'"],
  ['img-src', "'self' data:"],
  ['font-src', "'self'"],
  ['connect-src', "'self'"],
  ['base-uri', "'none'"],
  ['form-action', "'none'"],
];

/** For the page's `<meta http-equiv="Content-Security-Policy">`. */
export const contentSecurityPolicy = directives.map(([name, value]) => `${name} ${value}`).join('; ');

/** For a Content-Security-Policy response header: the same, plus what only a header can say. */
export const contentSecurityPolicyHeader = `${contentSecurityPolicy}; frame-ancestors 'none'`;
