// The constants' TypeScript declarations (generated into native/constants.d.ts with
// native/src/constants_gen.cpp by native/gen-constants.mjs) against what the addon exports at run
// time: the same names, values and enum types, and both files as the generator writes them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { libvirt } from '../lab/harness.ts';

const NATIVE = fileURLToPath(new URL('../../native/', import.meta.url));
const API_XML = '/usr/share/libvirt/api/libvirt-api.xml';

interface Declared {
  value: number | string;
  type: string | null;
}

function declared(): Map<string, Declared> {
  const dts = readFileSync(`${NATIVE}constants.d.ts`, 'utf8');
  const out = new Map<string, Declared>();
  for (const m of dts.matchAll(/(?:\/\*\* (\w+) \*\/\n)?export declare const (\w+): (-?\d+|'[^']*');/g)) {
    const [, type, name, literal] = m;
    if (name === undefined || literal === undefined) continue;
    out.set(name, { value: literal.startsWith("'") ? literal.slice(1, -1) : Number(literal), type: type ?? null });
  }
  return out;
}

describe('constants', () => {
  test('every declared constant is exported with its declared value, and every exported one is declared', () => {
    const decl = declared();
    assert.ok(decl.size > 300, `${decl.size} declarations`);
    const runtime = libvirt.constants;
    const module = libvirt as unknown as Record<string, unknown>;
    for (const [name, { value }] of decl) {
      assert.equal(runtime[name], value, `constants.${name}`);
      assert.equal(module[name], value, `the module's ${name}`);
    }
    assert.deepEqual(Object.keys(runtime).filter((name) => !decl.has(name)), [], 'exported but not declared');
  });

  test('each integer constant is declared with the enum type it has in enums', () => {
    const decl = declared();
    for (const [type, members] of Object.entries(libvirt.enums)) {
      for (const [name, value] of Object.entries(members)) {
        assert.deepEqual(decl.get(name), { value, type }, name);
      }
    }
  });

  test('constants.d.ts and constants_gen.cpp are what native/gen-constants.mjs writes', { skip: !existsSync(API_XML) && `no ${API_XML}` }, () => {
    const r = spawnSync(process.execPath, [`${NATIVE}gen-constants.mjs`, '--check', API_XML], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
});
