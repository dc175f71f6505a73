// Where the Electron binary is, if this machine has one. The `electron` package downloads its
// binary on first use, from a site these machines cannot reach, so we look before asking for it
// (requiring the package would start that download).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

const pkg = join(repoRoot, 'node_modules/electron');

function executableName() {
  const pathFile = join(pkg, 'path.txt');
  return existsSync(pathFile) ? readFileSync(pathFile, 'utf8').trim() : 'electron';
}

/** The folder holding Electron's binary: `dist` if given, else ELECTRON_OVERRIDE_DIST_PATH, else the package's own. Null when it holds none. */
export function electronDist(dist) {
  const dir = resolve(dist || process.env.ELECTRON_OVERRIDE_DIST_PATH || join(pkg, 'dist'));
  return existsSync(join(dir, executableName())) ? dir : null;
}

export function electronBinary() {
  const dist = electronDist();
  return dist ? join(dist, executableName()) : null;
}

/** The version of the Electron in `dist` (its `version` file), else the npm package's. */
export function electronVersion(dist) {
  const file = join(dist, 'version');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim().replace(/^v/, '');
  return JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).version;
}
