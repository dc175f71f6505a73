// The pieces of the SSH path that need no server: which URIs go through ssh and where to, the URI
// libvirt gets (Strata's ssh in the `command` parameter), hashed known_hosts names as ssh-keygen
// finds them, and failures named from the words libvirt 9.0 printed on this machine for a closed
// port, an unknown name and a refused host key (the issue's own words), and by its built-in SSH
// clients (qemu+libssh://, +libssh2://) asking for the callbacks Strata does not give, which no
// server is needed to produce again.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StrataError } from '../../src/shared/errors.ts';
import { classifyLibsshFailure, classifySshFailure, openSshUri, sshWords, type AttemptFacts } from '../../src/main/core/hosts/ssh/failures.ts';
import { hashedHostName } from '../../src/main/core/hosts/ssh/host-keys.ts';
import { runOpenSsh } from '../../src/main/core/hosts/ssh/openssh.ts';
import { sshTarget, withSshCommand } from '../../src/main/core/hosts/ssh/ssh-connector.ts';
import { NeedsUserError } from '../../src/main/core/hosts/needs-user.ts';

const facts: AttemptFacts = { target: 'root@host.example:2222', host: 'host.example', port: 2222, user: 'root', knownAs: '[host.example]:2222', knownHostsFile: '/home/u/.ssh/known_hosts', asked: [], uri: 'qemu+ssh://root@host.example:2222/system' };

describe('the SSH path without a server', () => {
  it('names the ssh destination of qemu+ssh URIs only', () => {
    assert.deepEqual(sshTarget('qemu+ssh://admin@host.example:2222/system?keyfile=/k'), { host: 'host.example', port: 2222, user: 'admin', noVerify: false });
    assert.deepEqual(sshTarget('qemu+ssh://[fe80::1]/system?no_verify=1'), { host: 'fe80::1', port: null, user: null, noVerify: true });
    assert.deepEqual(sshTarget('qemu+ssh:///system'), { host: 'localhost', port: null, user: null, noVerify: false });
    for (const uri of ['qemu:///system', 'qemu+tcp://host/system', 'qemu+libssh2://host/system', 'test:///default']) assert.equal(sshTarget(uri), null, uri);
  });

  it("gives libvirt Strata's ssh in the command parameter, the user's parameters kept", () => {
    assert.equal(withSshCommand('qemu+ssh://h/system', '/run/user/0/strata-ssh-x/ab/ssh'), 'qemu+ssh://h/system?command=%2Frun%2Fuser%2F0%2Fstrata-ssh-x%2Fab%2Fssh');
    assert.equal(withSshCommand('qemu+ssh://h/system?keyfile=/k', '/a b/ssh'), 'qemu+ssh://h/system?keyfile=/k&command=%2Fa%20b%2Fssh');
  });

  it('a tool ended by its timeout is done at its exit, though something it left still holds its output (as an ssh master does)', { timeout: 60_000 }, async (ctx) => {
    // The background sleep keeps the pipes open, as the master of a shared connection keeps a remote command's.
    const result = await runOpenSsh('sh', ['-c', 'sleep 600 & echo "$!"; exec sleep 600'], { timeoutMs: 2_000 });
    const holder = Number(result.stdout.trim());
    ctx.after(() => {
      try {
        process.kill(holder);
      } catch {
        // Already gone: nothing left to stop.
      }
    });
    assert.ok(holder > 0, result.stdout);
    assert.equal(result.code, null);
    assert.match(result.stderr, /sh was ended by SIGTERM after its timeout/);
  });

  it('hashes a host name as ssh does: ssh-keygen -F finds the line under the plain name', async (ctx) => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-test-known-'));
    ctx.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'known_hosts');
    await writeFile(file, `${hashedHostName('[host.example]:2222')} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINz/HOx2FlW8OfGq6UXE4O970Cq0FrgnPAw1ZkjShtAD\n`);
    assert.equal((await runOpenSsh('ssh-keygen', ['-F', '[host.example]:2222', '-f', file])).code, 0);
    assert.equal((await runOpenSsh('ssh-keygen', ['-F', 'host.example', '-f', file])).code, 1, 'the port is part of the name');
  });

  it("takes ssh's words out of libvirt's wrapping", () => {
    assert.equal(sshWords('Cannot recv data: Host key verification failed.: Connection reset by peer'), 'Host key verification failed.');
    assert.equal(sshWords('End of file while reading data: sh: 1: nc: not found: Input/output error'), 'sh: 1: nc: not found');
  });

  it('names network failures with an ssh hint and lets them back off; a refused key needs the user', () => {
    for (const words of [
      'Cannot recv data: ssh: connect to host 127.0.0.1 port 22029: Connection refused: Connection reset by peer',
      'Cannot recv data: ssh: Could not resolve hostname no-such-host.invalid: Name or service not known: Connection reset by peer',
    ]) {
      const err = classifySshFailure(new Error(words), facts);
      assert.ok(err instanceof StrataError && !(err instanceof NeedsUserError), words);
      assert.match(err.hint ?? '', /ssh could not reach host\.example/);
    }
    const key = classifySshFailure(new Error('Cannot recv data: Host key verification failed.: Connection reset by peer'), facts);
    assert.ok(key instanceof NeedsUserError);
    assert.equal(key.problem.kind, 'host-key-unknown');
    assert.equal(key.problem.fixes[0]?.command, 'ssh -p 2222 root@host.example true');
    const auth = classifySshFailure(new Error('Cannot recv data: root@host.example: Permission denied (publickey,password).: Connection reset by peer'), facts);
    assert.ok(auth instanceof NeedsUserError);
    assert.equal(auth.problem.kind, 'ssh-auth-failed');
    assert.doesNotMatch(auth.hint ?? '', /join the libvirt group/, 'not the local hint the issue saw');
    const other = new Error('something else entirely');
    assert.equal(classifySshFailure(other, facts), other, 'what it does not know stays as it was');
  });

  it('over qemu+libssh:// and +libssh2://, a question only auth callbacks could answer names the qemu+ssh:// URI to use', () => {
    assert.equal(openSshUri('qemu+libssh://admin@host.example:2222/system?known_hosts=/k&keyfile=/home/a/.ssh/id&sshauth=privkey'), 'qemu+ssh://admin@host.example:2222/system?keyfile=/home/a/.ssh/id');
    assert.equal(openSshUri('qemu+libssh2://host.example/system'), 'qemu+ssh://host.example/system');
    assert.equal(openSshUri('qemu+ssh://host.example/system'), null);
    // libvirt 9.0's words on this machine, for an unknown host key (libssh) and a key's passphrase (libssh2).
    const uri = 'qemu+libssh://root@host.example/system?known_hosts=/k';
    const hostKey = classifyLibsshFailure(new Error("libssh transport error: No user interaction callback provided: Can't verify the session host key"), uri);
    assert.ok(hostKey instanceof NeedsUserError);
    assert.equal(hostKey.problem.kind, 'host-key-unknown');
    assert.match(hostKey.message, /^qemu\+libssh:\/\/ needs an answer Strata cannot give over that transport/);
    assert.deepEqual(hostKey.problem.fixes.map((f) => f.uri), ['qemu+ssh://root@host.example/system']);
    const passphrase = classifyLibsshFailure(new Error("SSH transport error: No user interaction callback provided: Can't retrieve private key passphrase"), 'qemu+libssh2://host.example/system');
    assert.ok(passphrase instanceof NeedsUserError);
    assert.equal(passphrase.problem.kind, 'passphrase-needed');
    assert.match(passphrase.hint ?? '', /Use qemu\+ssh:\/\/host\.example\/system: it goes through OpenSSH/);
    const other = new Error('Cannot recv data: Connection refused');
    assert.equal(classifyLibsshFailure(other, uri), other, 'other failures stay as they were');
  });
});
