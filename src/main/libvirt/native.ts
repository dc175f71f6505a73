// Loads the addon from the repository's native/ folder. The path is found at run time because
// this module runs from src/ (tests, tsx) and from the bundle in out/main (app, headless server).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Native from '../../../native/index.d.ts';

function findNativeDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'native');
    if (existsSync(join(candidate, 'index.js')) && existsSync(join(candidate, 'binding.gyp'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('strata: cannot find the native/ folder of the libvirt addon: run Strata from its repository after `npm install`');
    dir = parent;
  }
}

export type NativeModule = typeof Native;
export type NativeConnection = Native.Connection;
export type NativeDomain = Native.Domain;
export type { BlockJobEvent, CloseEvent, LibvirtError as NativeLibvirtError } from '../../../native/index.d.ts';

function load(): NativeModule {
  const dir = findNativeDir();
  try {
    return createRequire(import.meta.url)(dir) as NativeModule;
  } catch (err) {
    // The shells show this line as it is (serve on stderr, the app in a dialog): it says what to run.
    const reason = (err instanceof Error ? err.message : String(err)).replace(/^strata: /, '');
    const todo = reason.includes('npm install')
      ? ''
      : ": check that libvirt's client library is installed (Debian: libvirt0), then rebuild the addon with `npm run build:native` (needs libvirt-dev)";
    throw new Error(`strata: cannot load the libvirt addon in ${dir}: ${reason}${todo}`, { cause: err });
  }
}

export const native: NativeModule = load();
