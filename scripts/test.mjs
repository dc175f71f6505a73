// `npm test [-- PATH…]`: type checks, builds, then runs every test (or those under PATH) with
// Node's test runner, one file at a time: the libvirt tests share one real daemon.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from './electron-binary.mjs';

function run(title, command, args) {
  const started = Date.now();
  console.log(`\n== ${title}`);
  const r = spawnSync(command, args, { cwd: repoRoot, stdio: 'inherit' });
  console.log(`== ${title}: ${r.status === 0 ? 'ok' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...testFiles(full));
    else if (name.endsWith('.test.ts')) out.push(relative(repoRoot, full));
  }
  return out;
}

const roots = process.argv.slice(2);
const files = (roots.length ? roots : ['test']).flatMap((r) =>
  statSync(join(repoRoot, r)).isDirectory() ? testFiles(join(repoRoot, r)) : [r],
);

const bin = (name) => join(repoRoot, 'node_modules/.bin', name);
run('type check (main, preload, shared, tests)', bin('tsc'), ['-p', 'tsconfig.node.json', '--noEmit']);
run('type check (benchmarks)', bin('tsc'), ['-p', 'bench', '--noEmit']);
run('type check (renderer)', bin('svelte-check'), ['--tsconfig', 'tsconfig.web.json', '--fail-on-warnings', '--output', 'human']);
run('build', process.execPath, ['node_modules/electron-vite/bin/electron-vite.js', 'build', '-c', 'electron.config.ts', '--logLevel', 'warn']);
run(`tests (${files.length} files)`, process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files]);
