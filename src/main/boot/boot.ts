// The one start-up the desktop app and `npm run serve` share: the data folder made and checked,
// logging set up (with --verbose, libvirt's own log too), then the core with every host. The
// core, and with it the libvirt addon, is imported only once logging is set up, so a missing
// addon is reported like every other start-up failure: the caller shows the StartupError's one
// line (on stderr, or in the app's dialog) and exits with code 2.
import type { StrataCore } from '../core/api/core.ts';
import { defaultUri } from '../core/hosts/default-uri.ts';
import { defaultDataDir, prepareDataDir, StartupError, startupFailureText } from '../core/storage/data-dir.ts';
import { libvirtLogEnv } from '../log/libvirt-log.ts';
import { configureLogging, log } from '../log/logger.ts';
import type { Flags } from './flags.ts';

export interface Booted {
  core: StrataCore;
  /** The data folder: saved hosts, history, logs, the window's place. */
  dataDir: string;
  /** The default host's URI, after LIBVIRT_DEFAULT_URI and libvirt's default. */
  uri: string;
  logFile: string | null;
}

/**
 * `starting` names what starts, for the log ('npm run serve', 'the desktop app'). Throws a
 * StartupError whose message is the one line to show.
 */
export async function boot(flags: Flags, starting: string): Promise<Booted> {
  const dataDir = defaultDataDir();
  const uri = defaultUri(flags.uri);
  try {
    await prepareDataDir(dataDir);
  } catch (err) {
    throw new StartupError(startupFailureText(err), { cause: err });
  }
  const logFile = configureLogging({ dataDir, verbose: flags.verbose });
  if (flags.verbose) {
    // Into this process's environment: libvirt reads it once, when the addon loads below.
    const libvirt = libvirtLogEnv(dataDir);
    Object.assign(process.env, libvirt.set);
    log.debug(libvirt.note);
  }
  log.info(`starting ${starting}`, { uri, dataDir, logFile, pid: process.pid });
  try {
    const { createCore } = await import('../core/api/core.ts');
    return { core: await createCore({ uri, dataDir }), dataDir, uri, logFile };
  } catch (err) {
    // At info, so the file keeps it too: the caller's line or dialog is the report for the user.
    log.info('startup failed', { err, stack: err instanceof Error ? err.stack : undefined });
    throw new StartupError(startupFailureText(err), { cause: err });
  }
}
