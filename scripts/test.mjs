// `npm test [-- PATH…]`: builds, type checks, then runs every test (or those under PATH) with
// Node's test runner. The tests that use the machine's libvirtd run one file at a time: they share
// that daemon, and a job of one counts against another's host limits. The others (pure code,
// libvirt's test driver, a throw-away user's own session daemon) run beside them in a second
// lane, one file at a time too. Tests that stop that daemon run alone, while the type checks run:
// no other test is running then, and the checks need no daemon.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from './electron-binary.mjs';

/** Runs a command; its output is shown as it comes, or (`quiet`) kept and shown when it ends. */
function run(title, command, args, { quiet = false } = {}) {
  const started = Date.now();
  if (!quiet) console.log(`\n== ${title}`);
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: repoRoot, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    let output = '';
    child.stdout?.on('data', (b) => (output += b));
    child.stderr?.on('data', (b) => (output += b));
    child.on('close', (status) => {
      if (quiet) console.log(`\n== ${title}\n${output}`);
      console.log(`== ${title}: ${status === 0 ? 'ok' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      resolve(status ?? 1);
    });
  });
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

// Tests that never reach the machine's libvirtd: checked by what they open (test:///default, no
// libvirt at all, qemu-img and qemu-storage-daemon on images of their own, or a throw-away user's
// own qemu:///session and sockets). The session suite also asks qemu:///system once, to be
// refused: no restart of that daemon may run meanwhile.
const besideTheDaemon = [
  /^test\/unit\//,
  /^test\/security\/(browser|contract-fuzz|server|xml-fuzz)\.test\.ts$/,
  /^test\/native\/(03-arguments|13-constants|15-host-definition-snapshots|18-remote-cut|90-coverage)\.test\.ts$/,
  /^test\/session\//,
  /^test\/core\/contract\.test\.ts$/,
  /^test\/faults\/05-engine-rules\.test\.ts$/,
  /^test\/lab\/lab\.test\.ts$/,
  /^test\/offline\/(10-offline-jobs|20-offline-steer|25-daemon-start|30-offline-recovery)\.test\.ts$/,
  /^test\/ssh\/ssh-words\.test\.ts$/,
];
// Tests that stop the machine's libvirtd: they run before the others, alone.
const stopTheDaemon = [/^test\/core\/30-restart\.test\.ts$/, /^test\/faults\/40-libvirtd-killed\.test\.ts$/];

const roots = process.argv.slice(2);
const files = (roots.length ? roots : ['test']).flatMap((r) =>
  statSync(join(repoRoot, r)).isDirectory() ? testFiles(join(repoRoot, r)) : [r],
);
const beside = files.filter((f) => besideTheDaemon.some((re) => re.test(f)));
const restarts = files.filter((f) => stopTheDaemon.some((re) => re.test(f)));
const onDaemon = files.filter((f) => !beside.includes(f) && !restarts.includes(f));

const bin = (name) => join(repoRoot, 'node_modules/.bin', name);
if ((await run('build', process.execPath, ['node_modules/electron-vite/bin/electron-vite.js', 'build', '-c', 'electron.config.ts', '--logLevel', 'warn'])) !== 0) process.exit(1);
// Built once for the whole run: the browser tests serve this `out/` instead of building it again.
process.env['STRATA_TEST_BUILT'] = '1';

const testArgs = (list) => ['--import', 'tsx', '--test', '--test-concurrency=1', ...list];
const [checks, restarted] = await Promise.all([
  Promise.all([
    run('type check (main, preload, shared, tests)', bin('tsc'), ['-p', 'tsconfig.node.json', '--noEmit'], { quiet: true }),
    run('type check (benchmarks)', bin('tsc'), ['-p', 'bench', '--noEmit'], { quiet: true }),
    run('type check (renderer)', bin('svelte-check'), ['--tsconfig', 'tsconfig.web.json', '--fail-on-warnings', '--output', 'human'], { quiet: true }),
  ]),
  restarts.length ? run(`tests that restart this machine's libvirtd (${restarts.length} files)`, process.execPath, testArgs(restarts)) : 0,
]);
if (checks.some((s) => s !== 0)) process.exit(1);

const lanes = await Promise.all([
  onDaemon.length ? run(`tests on this machine's libvirtd (${onDaemon.length} files)`, process.execPath, testArgs(onDaemon)) : 0,
  beside.length ? run(`tests beside it (${beside.length} files: no libvirtd, or their own)`, process.execPath, testArgs(beside), { quiet: onDaemon.length > 0 }) : 0,
]);
process.exit([restarted, ...lanes].some((s) => s !== 0) ? 1 : 0);
