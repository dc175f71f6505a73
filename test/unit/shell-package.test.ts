// What packaging ships and rebuilds, from package-lock.json: the packages the app loads, none of
// the addon's build tools, and @electron/rebuild only for a dependency with native code.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../../scripts/electron-binary.mjs';
import { exclusions, nativeRuntimePackages, runtimePackages, type LockFile } from '../../scripts/package-plan.mjs';

const lock: LockFile = {
  packages: {
    '': { dependencies: { zod: '^4', ws: '^8', 'node-gyp': '^11', 'node-addon-api': '^8', sqlite: '^1' } },
    'node_modules/zod': {},
    'node_modules/ws': { optionalDependencies: { bufferutil: '^4' } },
    'node_modules/bufferutil': { hasInstallScript: true },
    'node_modules/node-gyp': { dependencies: { tar: '^7', semver: '^7' } },
    'node_modules/node-addon-api': {},
    'node_modules/tar': {},
    'node_modules/semver': { version: '7.7.0' },
    'node_modules/sqlite': { dependencies: { semver: '^6' } },
    'node_modules/sqlite/node_modules/semver': { version: '6.3.1' },
    'node_modules/vite': { dev: true },
  },
};

describe('package plan', () => {
  it('ships the production dependencies the app loads and theirs, resolving nested copies first', () => {
    assert.deepEqual(runtimePackages(lock), ['node_modules/bufferutil', 'node_modules/sqlite', 'node_modules/sqlite/node_modules/semver', 'node_modules/ws', 'node_modules/zod']);
  });

  it('leaves out the addon’s build tools and what only they need; dev packages are never shipped anyway', () => {
    assert.deepEqual(exclusions(lock), ['!node_modules/node-addon-api/**', '!node_modules/node-gyp/**', '!node_modules/semver/**', '!node_modules/tar/**']);
  });

  it('names runtime packages with native code (install script or binding.gyp) for @electron/rebuild', () => {
    assert.deepEqual(nativeRuntimePackages(lock, (p) => p === 'node_modules/sqlite/binding.gyp'), ['bufferutil', 'sqlite']);
  });

  it('Strata’s own lock: ships ws and zod, not node-gyp, and nothing needs a rebuild for Electron', () => {
    const real = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as LockFile;
    const shipped = runtimePackages(real);
    assert.ok(shipped.includes('node_modules/ws') && shipped.includes('node_modules/zod'), shipped.join(', '));
    assert.ok(!shipped.includes('node_modules/node-gyp'));
    assert.ok(exclusions(real).includes('!node_modules/node-gyp/**'));
    assert.deepEqual(nativeRuntimePackages(real, (p) => existsSync(join(repoRoot, p))), []);
  });
});
