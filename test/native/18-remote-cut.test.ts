// A remote connection with calls in flight, its link silenced until keepalive declares it dead,
// closed while a new open hangs on the same silent link, then cut: six times over, the process
// survives. libvirt 9.0's client wrote into a worker thread's stack there when calls overlapped on
// the dead connection, and test/faults/35-remote-cut.test.ts died with SIGSEGV (see
// native/src/op_sequence.h). Checked in a child process (fixtures/remote-cut-child.ts), against a
// session libvirtd of the test's own: as root, that of a throw-away user; otherwise the current
// user's, in a runtime folder of its own. The machine's libvirtd is never used.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { createThrowawayUser, type ThrowawayUser } from '../session/throwaway-user.ts';
import { waitFor } from '../lab/wait.ts';

const CHILD = fileURLToPath(new URL('./fixtures/remote-cut-child.ts', import.meta.url));
const LIBVIRTD = ['/usr/sbin/libvirtd', '/usr/local/sbin/libvirtd'].find((p) => existsSync(p));
const root = process.getuid?.() === 0;

describe('calls in flight on a remote connection declared dead, then cut', { skip: !LIBVIRTD && 'libvirtd is not installed' }, () => {
  let user: ThrowawayUser | null = null;
  let ownDir: string | null = null;
  let daemon: ReturnType<typeof spawn> | null = null;
  let socket = '';

  before(async () => {
    let env: NodeJS.ProcessEnv;
    if (root) {
      user = await createThrowawayUser();
      env = user.env;
    } else {
      ownDir = await mkdtemp(join(tmpdir(), 'strata-remote-cut-'));
      env = { ...process.env, HOME: ownDir, XDG_RUNTIME_DIR: join(ownDir, 'run'), XDG_CONFIG_HOME: join(ownDir, 'config'), XDG_CACHE_HOME: join(ownDir, 'cache') };
    }
    socket = join(env['XDG_RUNTIME_DIR'] ?? '', 'libvirt', 'libvirt-sock');
    // An unprivileged libvirtd is a session daemon; it exits by itself if the test is killed.
    const [command, args] = user ? ['runuser', ['-u', user.name, '--', LIBVIRTD!, '--timeout', '120']] : [LIBVIRTD!, ['--timeout', '120']];
    daemon = spawn(command, args, { env, cwd: env['HOME'], stdio: 'ignore' });
    await waitFor(() => existsSync(socket), { timeoutMs: 20_000, intervalMs: 100, what: `the session libvirtd's socket ${socket}` });
  });
  after(async () => {
    daemon?.kill();
    await user?.remove();
    if (ownDir) await rm(ownDir, { recursive: true, force: true });
  });

  test('six rounds of silence, keepalive death, close, a hanging open and the cut: no crash', { timeout: 90_000 }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, socket, '6'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 80_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
    clearTimeout(timer);
    assert.equal(signal, null, `the child died of ${signal}: ${stderr.slice(-2000)}`);
    assert.equal(code, 0, stderr.slice(-2000));
    const out = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, number>;
    assert.equal(out['rounds'], 6, stdout);
    // Each round was the case under test: keepalive, not the cut, ended the connection.
    assert.equal(out['deadBeforeCut'], 6, stdout);
    assert.equal(out['closeCallbacks'], 6, stdout);
  });
});
