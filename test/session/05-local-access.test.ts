// How a refused local connection is named, from libvirt's words and the socket itself. The
// sockets are real (bound, with the owner group and mode of a distribution's libvirt socket); the
// user's groups and libvirt's error are given, since this process cannot drop out of a group or
// be refused by a socket (root is let in everywhere). Also where a practice lab goes, by which
// user QEMU runs as.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { localAccessProblem, localUri, type LocalContext } from '../../src/main/core/hosts/local-access.ts';
import { practiceLabRoot } from '../../src/main/core/lab/practice-lab.ts';

const root = process.getuid?.() === 0;
// As root any group will do; otherwise one of this user's own.
const socketGid = root ? 4242 : (process.getgid?.() ?? 0);

function libvirtError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('naming why a local daemon refused this user', () => {
  let dir: string;
  let socket = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-access-'));
    socket = join(dir, 'libvirt-sock');
    execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socket]);
    if (root) await chown(socket, 0, socketGid);
    await chmod(socket, 0o660);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const ctx = (listed: boolean, groups: number[] = [1000]): LocalContext => ({
    user: 'alice',
    uid: 1000,
    groups,
    groupFile: `alice:x:1000:\nlibvirt:x:${socketGid}:${listed ? 'bob,alice' : 'bob'}\n`,
    env: {},
  });
  const denied = () => libvirtError(`Failed to connect socket to '${socket}': Permission denied`, 'VIR_ERR_SYSTEM_ERROR');
  const uri = `qemu+unix:///system?socket=${socket}`;

  it('a socket of the libvirt group, and a user outside it: join, then log in again', () => {
    const need = localAccessProblem(denied(), { uri, afterLoss: false }, ctx(false));
    assert.equal(need?.problem.kind, 'not-in-group');
    assert.equal(need?.problem.fixes[0]?.command, 'sudo usermod -aG libvirt alice');
    assert.match(need?.problem.fixes[0]?.label ?? '', /log out and in again/);
    assert.match(need?.problem.fixes[0]?.label ?? '', /root-equivalent/);
    assert.equal(need?.problem.fixes[1]?.uri, 'qemu:///session');
    assert.deepEqual(need?.problem.watching, [], 'nothing to watch: only a new login helps');
  });

  it('listed in /etc/group but not in this login: a new login, not another usermod', () => {
    const need = localAccessProblem(denied(), { uri, afterLoss: false }, ctx(true));
    assert.equal(need?.problem.kind, 'group-needs-login');
    assert.match(need?.hint ?? '', /log out and in again/);
    assert.ok(!need?.problem.fixes.some((f) => f.command?.includes('usermod')));
  });

  it('polkit that cannot be asked (no system D-Bus), as a non-root user meets it here', () => {
    const err = libvirtError('internal error: Unable to get system bus connection: Could not connect: No such file or directory', 'VIR_ERR_INTERNAL_ERROR');
    const need = localAccessProblem(err, { uri: 'qemu:///system', afterLoss: false }, ctx(false));
    assert.equal(need?.problem.kind, 'polkit-unavailable');
    assert.doesNotMatch(need?.hint ?? '', /libvirtd is not running/);
    assert.equal(need?.problem.fixes[0]?.uri, 'qemu:///session');
    assert.deepEqual(need?.problem.watching, ['/run/dbus/system_bus_socket']);
  });

  it('polkit that said no', () => {
    const err = libvirtError("authentication failed: access denied by policy", 'VIR_ERR_AUTH_FAILED');
    assert.equal(localAccessProblem(err, { uri: 'qemu:///system', afterLoss: false }, ctx(false))?.problem.kind, 'polkit-refused');
  });

  it('root is not offered the session instead, and a lost daemon is left to the backoff', () => {
    const missing = libvirtError("Failed to connect socket to '/run/libvirt/libvirt-sock': No such file or directory", 'VIR_ERR_SYSTEM_ERROR');
    const asRoot = localAccessProblem(missing, { uri: 'qemu:///system', afterLoss: false }, { ...ctx(false), uid: 0 });
    assert.equal(asRoot?.problem.kind, 'socket-missing');
    assert.ok(!asRoot?.problem.fixes.some((f) => f.uri !== null));
    assert.equal(localAccessProblem(missing, { uri: 'qemu:///system', afterLoss: true }, ctx(false)), null);
  });

  it('remote URIs are not local', () => {
    assert.equal(localUri('qemu+ssh://admin@host/system'), null);
    assert.equal(localUri('qemu+tcp://127.0.0.1:1/system'), null);
    assert.deepEqual(localUri('qemu+unix:///session?socket=/x/y'), { instance: 'session', socket: '/x/y' });
  });

  it("puts a system instance's lab under the temporary folder when QEMU's user cannot enter the data folder", async () => {
    const privateDir = await mkdtemp(join(dir, 'private-'));
    await chmod(privateDir, 0o700);
    const root = join(privateDir, 'lab');
    const libvirtQemu = { uid: 64055, gid: 64055, source: 'a DAC base label' };
    assert.equal(practiceLabRoot(root, libvirtQemu, {}), join(tmpdir(), `strata-lab-${process.getuid?.()}`));
    assert.equal(practiceLabRoot(root, libvirtQemu, { STRATA_LAB_DIR: root }), root, 'a folder the user chose is kept (and refused with its reason)');
    const self = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, source: 'the session instance' };
    assert.equal(practiceLabRoot(root, self, {}), root, "a session's QEMU enters its own user's private folders");
  });
});
