// `npm run serve -- [--uri URI] [--port N]`: Strata's UI in a browser, served on loopback.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createCore } from '../core/api/core.ts';
import { defaultDataDir } from '../core/storage/data-dir.ts';
import { defaultUri } from '../core/hosts/default-uri.ts';
import { startHeadlessServer } from './http-server.ts';

const usage = 'usage: npm run serve -- [--uri URI] [--port N]   (port 0 or none picks a free port)';

function fail(message: string): never {
  console.error(`strata: ${message}\n${usage}`);
  process.exit(2);
}

function options(): { uri: string; port: number } {
  let values: { uri?: string; port?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: { uri: { type: 'string' }, port: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a whole number from 0 to 65535, not '${values.port}'`);
  return { uri: defaultUri(values.uri), port };
}

async function main(): Promise<void> {
  const { uri, port } = options();
  const here = dirname(fileURLToPath(import.meta.url));
  const staticDir = resolve(process.env['STRATA_RENDERER_DIR'] ?? join(here, '../renderer'));
  if (!existsSync(join(staticDir, 'index.html'))) fail(`the UI is not built (no ${staticDir}/index.html): run \`npm run build\``);

  const core = await createCore({ uri, dataDir: defaultDataDir() });
  const server = await startHeadlessServer(core, { port, staticDir });
  console.log(`Listening: ${server.url}`);
  const host = (await core.service['hosts.list']())[0];
  if (host && host.state !== 'connected') console.error(`strata: ${host.label} is not reachable yet: ${host.reason ?? host.state}`);

  let closing = false;
  const shutdown = (): void => {
    if (closing) return;
    closing = true;
    void Promise.all([server.close(), core.close()]).finally(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

void main();
