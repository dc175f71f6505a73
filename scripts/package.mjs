// `npm run package [-- --electron-dist DIR] [-- --dir]`: builds Strata's AppImage and .deb (or,
// with --dir, only the unpacked app in dist/linux-unpacked) with electron-builder. Electron is
// taken from --electron-dist, else ELECTRON_OVERRIDE_DIST_PATH, else node_modules/electron/dist;
// never downloaded. Without one it says so in one line and exits 1.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { electronDist, electronVersion, repoRoot } from './electron-binary.mjs';
import { exclusions, nativeRuntimePackages } from './package-plan.mjs';

const { values } = parseArgs({ options: { 'electron-dist': { type: 'string' }, dir: { type: 'boolean' } } });

function fail(message) {
  console.error(`strata: cannot package: ${message}`);
  process.exit(1);
}

const dist = electronDist(values['electron-dist']);
if (!dist) {
  const given = values['electron-dist'] ?? process.env.ELECTRON_OVERRIDE_DIST_PATH;
  fail(
    given
      ? `no Electron binary in ${given} (it should be the folder of an unpacked Electron, holding its \`electron\` executable)`
      : "no Electron binary on this machine: set ELECTRON_OVERRIDE_DIST_PATH (or pass --electron-dist DIR) to an unpacked Electron's folder",
  );
}
const addon = join(repoRoot, 'native/build/Release/strata_libvirt.node');
if (!existsSync(addon)) fail('the libvirt addon is not built: run `npm install` (or `npm run build:native`) with libvirt-dev installed');

const build = spawnSync(process.execPath, ['node_modules/electron-vite/bin/electron-vite.js', 'build', '-c', 'electron.config.ts', '--logLevel', 'warn'], { cwd: repoRoot, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8'));
const native = nativeRuntimePackages(lock, (p) => existsSync(join(repoRoot, p)));
if (native.length > 0) console.log(`strata: rebuilding ${native.join(', ')} for Electron's ABI (@electron/rebuild)`);

// Imported only now: electron-builder is a large module, and the checks above need none of it.
const { build: electronBuilder, Platform } = await import('electron-builder');
const version = electronVersion(dist);
console.log(`strata: packaging with Electron ${version} from ${dist}`);
try {
  const artifacts = await electronBuilder({
    projectDir: repoRoot,
    // No target named: electron-builder.yml's (AppImage and deb).
    targets: values.dir ? Platform.LINUX.createTarget('dir') : Platform.LINUX.createTarget(),
    publish: 'never',
    // Merged over electron-builder.yml; linux.files adds to its files.
    config: {
      electronDist: dist,
      electronVersion: version,
      npmRebuild: native.length > 0,
      linux: { files: exclusions(lock) },
    },
  });
  for (const a of artifacts) console.log(`strata: built ${a}`);
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
