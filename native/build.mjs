// Builds the addon during `npm install`. Checks for libvirt's development files first, so a
// missing package is named instead of surfacing as a compiler error.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function fail(message) {
  console.error(`\nstrata: cannot build the libvirt addon: ${message}\n`);
  process.exit(1);
}

const pc = spawnSync('pkg-config', ['--exists', '--print-errors', 'libvirt >= 8.0.0'], { encoding: 'utf8' });
if (pc.error) {
  fail('pkg-config is not installed. On Debian/Ubuntu: apt-get install pkg-config libvirt-dev');
}
if (pc.status !== 0) {
  fail(
    'libvirt development files (libvirt >= 8.0) were not found.\n' +
      '  Debian/Ubuntu: apt-get install libvirt-dev\n' +
      '  Fedora/RHEL:   dnf install libvirt-devel\n' +
      `  pkg-config said: ${pc.stderr.trim()}`,
  );
}

const require = createRequire(import.meta.url);
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
const gypArgs = [nodeGyp, 'rebuild', '--jobs=max'];
// Build against the running Node's own headers when they are installed beside it, so no header
// download is needed (these machines reach no download site). N-API keeps the result loadable
// in Electron too.
const prefix = resolve(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h'))) {
  gypArgs.push(`--nodedir=${prefix}`);
}
const gyp = spawnSync(process.execPath, gypArgs, { cwd: here, stdio: 'inherit' });
if (gyp.status !== 0) fail('node-gyp failed; its output is above.');
