// `npm start [-- --uri URI]`: builds and opens the desktop app.
import { spawnSync } from 'node:child_process';
import { electronBinary, repoRoot } from './electron-binary.mjs';

const binary = electronBinary();
if (!binary) {
  console.error(
    "strata: Electron's binary is not installed on this machine (set ELECTRON_OVERRIDE_DIST_PATH to an installed Electron); run `npm run serve` to use Strata in a browser instead.",
  );
  process.exit(1);
}

const build = spawnSync(process.execPath, ['node_modules/electron-vite/bin/electron-vite.js', 'build', '-c', 'electron.config.ts'], {
  cwd: repoRoot,
  stdio: 'inherit',
});
if (build.status !== 0) process.exit(build.status ?? 1);

// Chromium refuses to run as root unless its sandbox is off; only then is it turned off.
const rootFlags = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
const app = spawnSync(binary, [...rootFlags, repoRoot, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(app.status ?? 1);
