// The remote-backup suite (test/session/as-user/session-remote-backup.suite.ts) runs as an ordinary
// user against that user's own qemu:///session, reached over an sshd of the suite's own: a remote
// host that is not the machine's system daemon. As root (CI), it runs as a throw-away user made for
// the run (useradd, a private home under /tmp, removed at the end with its processes); libvirt's
// client starts that user's session daemon on demand, with its socket in the user's
// XDG_RUNTIME_DIR. When that user cannot read the repository (a clone under /root), it runs from a
// readable copy. As anyone else, it runs as the current user.
import assert from 'node:assert/strict';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { sshdMissing } from '../ssh/sshd.ts';
import { createThrowawayUser, readableCopy, runPrefixed, sweepThrowawayUsers } from './throwaway-user.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const suites = ['test/session/as-user/session-remote-backup.suite.ts'];
const nodeArgs = ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...suites];
const root = process.getuid?.() === 0;

describe(root ? 'as a throw-away ordinary user' : 'as this user', { timeout: 180_000, skip: sshdMissing() ?? false }, () => {
  it('backs up a remote host\'s domain over SSH to the user\'s own qemu:///session', async () => {
    const env = { STRATA_TEST_URI: 'qemu:///session' };
    if (!root) {
      const r = await runPrefixed(process.execPath, nodeArgs, { cwd: repoRoot, env: { ...process.env, ...env }, timeoutMs: 150_000, prefix: '  | ' });
      assert.equal(r.code, 0, `the session suites failed:\n${r.output.slice(-4000)}`);
      return;
    }
    const swept = await sweepThrowawayUsers();
    if (swept.length > 0) console.log(`removed users of killed runs: ${swept.join(', ')}`);
    const user = await createThrowawayUser();
    let copy: Awaited<ReturnType<typeof readableCopy>> | null = null;
    try {
      const needed = ['package.json', 'node_modules/tsx/package.json', 'native/build/Release/strata_libvirt.node', ...suites].map((p) => join(repoRoot, p));
      let cwd = repoRoot;
      if (process.env['STRATA_TEST_AS_USER_COPY'] === '1' || !(await user.canRead(needed))) {
        copy = await readableCopy(repoRoot, ['package.json', 'tsconfig.json', 'tsconfig.node.json', 'src', 'test', 'native', 'node_modules']);
        cwd = copy.dir;
        console.log(`${user.name} cannot read ${repoRoot} (or a copy was asked for): running from ${cwd}`);
        assert.ok(await user.canRead(needed.map((p) => join(cwd, p.slice(repoRoot.length + 1)))), `${user.name} cannot read the copy in ${cwd}`);
      }
      assert.ok(await user.canRead([process.execPath]), `${user.name} cannot run ${process.execPath}: install Node.js where every user can`);
      console.log(`running as ${user.name} (uid ${user.uid}), home ${user.home} (mode 700), XDG_RUNTIME_DIR ${user.env['XDG_RUNTIME_DIR']}`);
      const r = await runPrefixed(process.execPath, nodeArgs, { cwd, env: { ...user.env, ...env }, user: user.name, timeoutMs: 150_000, prefix: '  | ' });
      assert.equal(r.code, 0, `the session suites failed as ${user.name}:\n${r.output.slice(-4000)}`);
    } finally {
      await user.remove();
      await copy?.remove();
    }
  });
});
