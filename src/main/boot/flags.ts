// Strata's command-line flags, read once per process by the one function for each way it starts.
// `npm run serve` takes only its own flags and refuses anything else; the desktop app finds its
// flags among what Electron passes (the app's path, Chromium's switches such as --no-sandbox),
// which it cannot refuse.
import { parseArgs } from 'node:util';
import { defaultListen, parseListenAddress } from '../server/listen-address.ts';

/** The flags both ways of starting take. */
export interface Flags {
  /** The default host's URI when given; boot falls back to LIBVIRT_DEFAULT_URI, then qemu:///system. */
  uri: string | undefined;
  verbose: boolean;
}

export interface ServeFlags extends Flags {
  /** 0 picks a free port. */
  port: number;
  listen: string;
}

export const serveUsage =
  'usage: npm run serve -- [--uri URI] [--port N] [--listen ADDRESS] [--verbose]   (port 0 or none picks a free port; ADDRESS defaults to 127.0.0.1)';

/** A flag `npm run serve` cannot take; the message names it and what it should be. */
export class FlagError extends Error {
  override name = 'FlagError';
}

/** The desktop app's flags, wherever they are among Electron's and Chromium's own arguments. */
export function appFlags(argv: readonly string[]): Flags {
  const { values } = parseArgs({ args: [...argv], options: { uri: { type: 'string' }, verbose: { type: 'boolean' } }, strict: false, allowPositionals: true });
  return { uri: typeof values.uri === 'string' ? values.uri : undefined, verbose: values.verbose === true };
}

/** `npm run serve`'s flags, or 'help' for --help; throws a FlagError for anything it cannot take. */
export function serveFlags(argv: readonly string[]): ServeFlags | 'help' {
  let values: { uri?: string; port?: string; listen?: string; verbose?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        uri: { type: 'string' },
        port: { type: 'string' },
        listen: { type: 'string' },
        verbose: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new FlagError(err instanceof Error ? err.message : String(err), { cause: err });
  }
  if (values.help) return 'help';
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new FlagError(`--port must be a whole number from 0 to 65535, not '${values.port}'`);
  const listen = values.listen === undefined ? defaultListen : parseListenAddress(values.listen);
  if (listen === null) throw new FlagError(`--listen must be an IP address of this machine (or localhost), not '${values.listen}'`);
  return { uri: values.uri, verbose: values.verbose === true, port, listen };
}
