// The words of a command run on a remote host for its backup files: each argument quoted so the
// remote shell reads it as one word whatever it holds (run by sh here, as the remote login shell
// would), the ssh options libvirt would give ssh for the URI, a control socket path that fits, and
// the progress a remote restore's qemu-img prints.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { controlPathFor, remoteCommand, sshArgsOf } from '../../src/main/core/hosts/ssh/remote-shell.ts';
import { sshTarget } from '../../src/main/core/hosts/ssh/ssh-connector.ts';
import { lastPercent } from '../../src/main/core/backup/restore-remote.ts';

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
