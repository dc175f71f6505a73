// The words of a command run on a remote host for its backup files: each argument quoted so the
// remote shell reads it as one word whatever it holds (run by sh here, as the remote login shell
// would), the ssh options libvirt would give ssh for the URI, a control socket path that fits, and
// the progress a remote restore's qemu-img prints, and how its abort reaches the remote process.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { controlPathFor, remoteCommand, sshArgsOf } from '../../src/main/core/hosts/ssh/remote-shell.ts';
import { sshTarget } from '../../src/main/core/hosts/ssh/ssh-connector.ts';
import { lastPercent, watchRemoteQemuImg, type RemoteChild } from '../../src/main/core/backup/remote-qemu-img.ts';

describe('remote commands', () => {
  it("quotes every word: sh reads back exactly the arguments, and runs none of what they hold", () => {
    const words = ["a b", "$(echo pwned)", "'; echo pwned; '", '"`echo pwned`"', 'back\\slash', '*', '~', '-n', '', "it's"];
    const line = remoteCommand(['printf', '%s\\0', ...words]);
    const out = execFileSync('/bin/sh', ['-c', line], { encoding: 'utf8' });
    assert.deepEqual(out.split('\0').slice(0, -1), words);
  });

  it('gives ssh the port, user, key file and no_verify of the URI, as libvirt does', () => {
    const uri = 'qemu+ssh://me@far.example:2222/system?keyfile=/home/me/.ssh/lab&no_verify=1';
    assert.deepEqual(sshArgsOf(uri, sshTarget(uri)!), ['-p', '2222', '-l', 'me', '-i', '/home/me/.ssh/lab', '-o', 'StrictHostKeyChecking=no']);
    const plain = 'qemu+ssh://far.example/system';
    assert.deepEqual(sshArgsOf(plain, sshTarget(plain)!), []);
  });

  it('puts one control socket per host in the runtime folder, or none when the path would not fit', () => {
    const a = controlPathFor('/run/user/1000/strata-ssh-abc', 'host-1', 'qemu+ssh://far/system');
    assert.match(a ?? '', /^\/run\/user\/1000\/strata-ssh-abc\/cm-[0-9a-f]{16}$/);
    assert.notEqual(a, controlPathFor('/run/user/1000/strata-ssh-abc', 'host-2', 'qemu+ssh://far/system'));
    assert.equal(controlPathFor(`/tmp/${'x'.repeat(90)}`, 'host-1', 'qemu+ssh://far/system'), null);
  });

  it("reads qemu-img convert -p's progress, the last figure of what came so far", () => {
    assert.equal(lastPercent('4711\n'), null);
    assert.equal(lastPercent('4711\n    (0.00/100%)\r    (12.50/100%)\r    (37'), 12.5);
    assert.equal(lastPercent('    (100.00/100%)\r\n'), 100);
  });
});

// The remote end's timing is what a real ssh cannot give on demand (its first line held back until
// after the abort), so the child here is a stand-in with the same streams.
function standIn(): { child: RemoteChild & { signals: string[] }; stdout: PassThrough; killed: Promise<void> } {
  const events = new EventEmitter();
  const stdout = new PassThrough();
  let signalled!: () => void;
  const killed = new Promise<void>((resolve) => (signalled = resolve));
  const signals: string[] = [];
  const child = {
    stdout,
    stderr: new PassThrough(),
    exitCode: null,
    signals,
    kill(signal: NodeJS.Signals) {
      signals.push(signal);
      signalled();
      return true;
    },
    once(event: 'close', listener: (code: number | null) => void) {
      return events.once(event, listener);
    },
  };
  return { child, stdout, killed };
}

function remoteKiller(): { kill(pid: number): Promise<void>; remote: string; pids: number[]; reached: Promise<number> } {
  let reach!: (pid: number) => void;
  const reached = new Promise<number>((resolve) => (reach = resolve));
  const pids: number[] = [];
  return {
    remote: 'user@host',
    pids,
    reached,
    kill: async (pid: number) => {
      pids.push(pid);
      reach(pid);
    },
  };
}

describe("a remote qemu-img's abort", () => {
  it('ends the remote process by its pid, also when the abort came before the pid, and leaves the local ssh to end with it', async () => {
    const { child, stdout } = standIn();
    const files = remoteKiller();
    const run = watchRemoteQemuImg(files, child, () => undefined);
    await run.cancel();
    assert.deepEqual([files.pids, child.signals], [[], []], 'nothing to end yet: the pid is not known, and the local ssh is no way to it');
    stdout.write('4711\n    (3.00/100%)\r');
    assert.equal(await files.reached, 4711);
    assert.deepEqual(child.signals, []);
    assert.equal(run.cancelled, true);
  });

  it('ends it at once when the pid is known', async () => {
    const { child, stdout } = standIn();
    const files = remoteKiller();
    const run = watchRemoteQemuImg(files, child, () => undefined);
    const progress = new Promise((resolve) => stdout.once('data', resolve));
    stdout.write('815\n    (40.00/100%)\r');
    await progress;
    assert.equal(run.percent(), 40);
    await run.cancel();
    assert.deepEqual(files.pids, [815]);
  });

  it('ends the local ssh when the pid never comes (a link stuck before the command ran)', async () => {
    const { child, killed } = standIn();
    const files = remoteKiller();
    const run = watchRemoteQemuImg(files, child, () => undefined, 1);
    await run.cancel();
    await killed;
    assert.deepEqual([files.pids, child.signals], [[], ['SIGTERM']]);
  });
});
