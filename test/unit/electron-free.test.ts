// The Electron-free parts stay free of Electron, so they run (and are tested) in plain Node and
// the headless server never loads it: only src/main/electron and src/preload may import it, and
// every other folder of src/main is checked. The two central files keep their size.
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
  const mayImport = new Set(['electron']);
  const main = (await readdir(join(repoRoot, 'src/main'), { withFileTypes: true })).filter((e) => e.isDirectory() && !mayImport.has(e.name));
  const dirs = [...main.map((e) => `src/main/${e.name}`), 'src/shared'];
  assert.ok(dirs.includes('src/main/desktop') && dirs.includes('src/main/boot'), `checked ${dirs.join(', ')}`);
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

// A host is its connection, domains and operations; a job's life is the job model's. Both files
// grew past what one reader holds before, so their size is kept here rather than in a reviewer's head.
it('host.ts and job-tracker.ts stay under 400 lines each', async () => {
  for (const file of ['src/main/core/hosts/host.ts', 'src/main/core/jobs/job-tracker.ts']) {
    const lines = (await readFile(join(repoRoot, file), 'utf8')).split('\n').length - 1;
    assert.ok(lines < 400, `${file} has ${lines} lines: move what is not its own to a file of its own`);
  }
});
