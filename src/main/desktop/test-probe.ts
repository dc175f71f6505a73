// What the end-to-end test reads of the shell that Electron cannot tell it (there is no getter
// for a window's progress bar, and notifications leave for the desktop's server): only when
// STRATA_TEST_HOOKS=1, the shell records them on globalThis, where Playwright's
// electronApp.evaluate reads them in the main process.
import type { ShellEvent } from '../../shared/channels.ts';
import type { JobNotice } from './job-notice.ts';

export interface ShellProbe {
  /** Every value given to setProgressBar, in order. */
  progress: number[];
  /** Every notification shown. */
  notices: JobNotice[];
  /** Every event sent to the page on the shell channel. */
  shellEvents: ShellEvent[];
}

const probeKey = '__strataShellProbe';

export function installProbe(env: NodeJS.ProcessEnv): ShellProbe | null {
  if (env['STRATA_TEST_HOOKS'] !== '1') return null;
  const probe: ShellProbe = { progress: [], notices: [], shellEvents: [] };
  (globalThis as unknown as Record<string, unknown>)[probeKey] = probe;
  return probe;
}
