// `npm run serve -- [--uri URI] [--port N] [--listen ADDRESS] [--verbose]`: Strata's UI in a
// browser, served on loopback unless --listen names another address.
// The core (and with it the libvirt addon) is imported only once logging is set up, so a missing
// addon is reported in one line like every other startup failure, with exit code 2.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { StrataCore } from '../core/api/core.ts';
import { defaultDataDir, prepareDataDir, startupFailureText } from '../core/storage/data-dir.ts';
import { defaultUri } from '../core/hosts/default-uri.ts';
import { libvirtLogEnv } from '../log/libvirt-log.ts';
import { configureLogging, flushLogs, log } from '../log/logger.ts';
import { startHeadlessServer, type HeadlessServer } from './http-server.ts';
import { defaultListen, exposedWarning, isLoopback, parseListenAddress } from './listen-address.ts';
import { stopOnSignals } from './shutdown.ts';

const usage =
  'usage: npm run serve -- [--uri URI] [--port N] [--listen ADDRESS] [--verbose]   (port 0 or none picks a free port; ADDRESS defaults to 127.0.0.1)';

function fail(message: string, withUsage = false): never {
  console.error(`strata: ${message}${withUsage ? `\n${usage}` : ''}`);
  flushLogs();
  process.exit(2);
}

function options(): { uri: string; port: number; listen: string; verbose: boolean } {
  let values: { uri?: string; port?: string; listen?: string; verbose?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
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
    fail(err instanceof Error ? err.message : String(err), true);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a whole number from 0 to 65535, not '${values.port}'`, true);
  const listen = values.listen === undefined ? defaultListen : parseListenAddress(values.listen);
  if (listen === null) fail(`--listen must be an IP address of this machine (or localhost), not '${values.listen}'`, true);
  return { uri: defaultUri(values.uri), port, listen, verbose: values.verbose === true };
}

async function main(): Promise<void> {
  const { uri, port, listen, verbose } = options();
  const here = dirname(fileURLToPath(import.meta.url));
  const staticDir = resolve(process.env['STRATA_RENDERER_DIR'] ?? join(here, '../renderer'));
  if (!existsSync(join(staticDir, 'index.html'))) fail(`the UI is not built (no ${staticDir}/index.html): run \`npm run build\``);

  const dataDir = defaultDataDir();
  try {
    await prepareDataDir(dataDir);
  } catch (err) {
    fail(startupFailureText(err));
  }
  const logFile = configureLogging({ dataDir, verbose });
  process.on('uncaughtException', (err) => {
    log.error('uncaught exception: exiting', { err, stack: err.stack });
    flushLogs();
    process.exit(1);
  });
  if (verbose) {
    const libvirt = libvirtLogEnv(dataDir);
    Object.assign(process.env, libvirt.set);
    log.debug(libvirt.note);
  }
  log.info('starting npm run serve', { uri, dataDir, logFile, pid: process.pid });

  let core: StrataCore;
  try {
    const { createCore } = await import('../core/api/core.ts');
    core = await createCore({ uri, dataDir });
  } catch (err) {
    // At info, so the file keeps it too: the line on stderr below is the report for the user.
    log.info('startup failed', { err, stack: err instanceof Error ? err.stack : undefined });
    fail(startupFailureText(err));
  }
  let server: HeadlessServer;
  try {
    server = await startHeadlessServer(core, { port, staticDir, listen });
  } catch (err) {
    await core.close();
    fail(`cannot listen on ${listen} port ${port}: ${err instanceof Error ? err.message : String(err)}`);
  }
  console.log(`Listening: ${server.url}`);
  log.info('listening', { listen, port: server.port });
  if (!isLoopback(listen)) {
    console.error(`strata: warning: ${exposedWarning(listen)}`);
    log.warn(exposedWarning(listen));
  }
  const host = (await core.service['hosts.list']())[0];
  if (host && host.state !== 'connected') console.error(`strata: ${host.label} is not reachable yet: ${host.reason ?? host.state}`);

  stopOnSignals({
    stop: async () => {
      await Promise.all([server.close(), core.close()]);
    },
    exit: (code) => process.exit(code),
  });
}

void main();
