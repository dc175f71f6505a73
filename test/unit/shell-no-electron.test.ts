// The electron-free parts stay free of Electron, so they run (and are tested) in plain Node and
// the headless server never loads it: only src/main/electron and src/preload may import it.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { it } from 'node:test';
import { repoRoot } from '../../scripts/electron-binary.mjs';

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(full)));
    else if (/\.(ts|mts|js|mjs|cjs)$/.test(entry.name)) out.push(full);
  }
  return out;
}

it('no module outside src/main/electron and src/preload imports electron', async () => {
  const importsElectron = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)['"]electron(?:\/[^'"]*)?['"]/;
  const dirs = ['src/main/core', 'src/main/libvirt', 'src/main/server', 'src/main/shell', 'src/main/log', 'src/shared'];
  const offenders: string[] = [];
  let checked = 0;
  for (const dir of dirs) {
    for (const file of await sources(join(repoRoot, dir))) {
      checked++;
      if (importsElectron.test(await readFile(file, 'utf8'))) offenders.push(relative(repoRoot, file));
    }
  }
  assert.ok(checked > 20, `checked ${checked} files`);
  assert.deepEqual(offenders, []);
  // The pattern does find an import when there is one.
  assert.ok(importsElectron.test("import { app } from 'electron';") && importsElectron.test("import type { WebContents } from 'electron';"));
});
