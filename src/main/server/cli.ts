// `npm run serve -- [--uri URI] [--port N] [--listen ADDRESS] [--verbose]`: Strata's UI in a
// browser, served on loopback unless --listen names another address. It starts as the desktop
// app does (src/main/boot), then listens; any start-up failure is one line on stderr, exit code 2.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { boot, type Booted } from '../boot/boot.ts';
import { FlagError, serveFlags, serveUsage, type ServeFlags } from '../boot/flags.ts';
import { flushLogs, log } from '../log/logger.ts';
import { startHeadlessServer, type HeadlessServer } from './http-server.ts';
import { exposedWarning, isLoopback } from './listen-address.ts';
import { stopOnSignals } from './shutdown.ts';

function fail(message: string, withUsage = false): never {
  console.error(`strata: ${message}${withUsage ? `\n${serveUsage}` : ''}`);
  flushLogs();
  process.exit(2);
}

function flags(): ServeFlags {
  let read: ServeFlags | 'help';
  try {
    read = serveFlags(process.argv.slice(2));
  } catch (err) {
    if (err instanceof FlagError) fail(err.message, true);
    throw err;
  }
  if (read === 'help') {
    console.log(serveUsage);
    process.exit(0);
  }
  return read;
}

async function main(): Promise<void> {
  const { port, listen, ...common } = flags();
  const here = dirname(fileURLToPath(import.meta.url));
  const staticDir = resolve(process.env['STRATA_RENDERER_DIR'] ?? join(here, '../renderer'));
  if (!existsSync(join(staticDir, 'index.html'))) fail(`the UI is not built (no ${staticDir}/index.html): run \`npm run build\``);

  process.on('uncaughtException', (err) => {
    log.error('uncaught exception: exiting', { err, stack: err.stack });
    flushLogs();
    process.exit(1);
  });
  let booted: Booted;
  try {
    booted = await boot(common, 'npm run serve');
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  const { core } = booted;
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
