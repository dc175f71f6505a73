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
    if (parent === dir) throw new Error('strata: cannot find the native/ folder of the libvirt addon');
    dir = parent;
  }
}

export type NativeModule = typeof Native;
export type NativeConnection = Native.Connection;
export type NativeDomain = Native.Domain;
export type { BlockJobEvent, CloseEvent, LibvirtError as NativeLibvirtError } from '../../../native/index.d.ts';

export const native: NativeModule = createRequire(import.meta.url)(findNativeDir()) as NativeModule;
