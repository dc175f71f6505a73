// What goes into the packages, read from package-lock.json. Plain functions, so the unit tests
// check them without electron-builder or Electron.
//
// Strata's addon is built on Node-API, whose ABI Node and Electron share: the build `npm install`
// made loads in Electron as it is, and node-gyp and node-addon-api, listed as dependencies so that
// `npm install` can build it, are tools nothing loads at run time. A dependency built against
// V8's or Node's own ABI would need rebuilding for Electron's: for those, packaging turns on
// electron-builder's npmRebuild, which runs @electron/rebuild.

/** Build-time helpers of Node-API addons: headers and tools, nothing the app loads. */
const buildTools = ['node-gyp', 'node-addon-api'];

function nameOf(path) {
  return path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
}

/** Where npm put `name` as seen from the package at `from` (nested first, then hoisted). */
function resolvePath(lock, from, name) {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (!dir) return null;
    const up = dir.lastIndexOf('/node_modules/');
    dir = up === -1 ? '' : dir.slice(0, up);
  }
}

/** Lock paths of the packages the app loads at run time: the production dependencies but the build tools, and theirs. */
export function runtimePackages(lock) {
  const root = lock.packages[''] ?? {};
  const seen = new Set();
  const queue = Object.keys(root.dependencies ?? {})
    .filter((n) => !buildTools.includes(n))
    .map((n) => resolvePath(lock, '', n))
    .filter(Boolean);
  while (queue.length) {
    const path = queue.shift();
    if (seen.has(path)) continue;
    seen.add(path);
    const meta = lock.packages[path];
    for (const dep of Object.keys({ ...meta.dependencies, ...meta.optionalDependencies })) {
      const found = resolvePath(lock, path, dep);
      if (found) queue.push(found);
    }
  }
  return [...seen].sort();
}

/** electron-builder `files` patterns leaving out every production package the app does not load. */
export function exclusions(lock) {
  const keep = new Set(runtimePackages(lock));
  return Object.entries(lock.packages)
    .filter(([path, meta]) => path.startsWith('node_modules/') && !path.includes('/node_modules/', 'node_modules/'.length) && !meta.dev && !keep.has(path))
    .map(([path]) => `!${path}/**`)
    .sort();
}

/** Runtime packages with native code of their own: an install script, or a binding.gyp (`has` looks for a file). */
export function nativeRuntimePackages(lock, has) {
  return runtimePackages(lock)
    .filter((path) => lock.packages[path].hasInstallScript || lock.packages[path].gypfile || has(`${path}/binding.gyp`))
    .map(nameOf);
}
