// With --verbose, libvirt's own client library logs too: every API call with its arguments, the
// remote driver's steps, and libvirt's errors, in <dataDir>/logs/libvirt.log (not rotated: it is
// written only on request). libvirt reads these variables once, when it initialises, so they
// must be set before the addon loads. A user who set libvirt's variables keeps them.
import { join } from 'node:path';

const libvirtVariables = ['LIBVIRT_DEBUG', 'LIBVIRT_LOG_FILTERS', 'LIBVIRT_LOG_OUTPUTS'] as const;

/** The variables to add to the environment, and a line for Strata's log saying what was done. */
export function libvirtLogEnv(dataDir: string, env: NodeJS.ProcessEnv = process.env): { set: Record<string, string>; note: string } {
  const given = libvirtVariables.filter((name) => env[name]);
  if (given.length > 0) return { set: {}, note: `libvirt logs as ${given.join(', ')} say` };
  const file = join(dataDir, 'logs', 'libvirt.log');
  // libvirt separates its outputs with spaces and has no quoting.
  if (/\s/.test(file)) return { set: {}, note: `libvirt cannot log to ${file}: the path has a space; set LIBVIRT_LOG_OUTPUTS yourself` };
  return {
    set: {
      // Debug for the public API (libvirt.*) and the remote driver; warnings for the rest (the
      // event loop and RPC at debug would write a line per poll and per message).
      LIBVIRT_LOG_FILTERS: '1:libvirt 1:remote',
      LIBVIRT_LOG_OUTPUTS: `1:file:${file}`,
    },
    note: `libvirt logs its calls to ${file}`,
  };
}
