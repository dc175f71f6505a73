// The remote host tests make for themselves (remote-forwarder.ts): it reaches the local daemon
// through libvirt's remote driver, listens on loopback only, serves no other local user, and
// leaves nothing behind once closed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { libvirt, virsh, waitFor } from './harness.ts';
import { startRemoteForwarder, type RemoteForwarder } from './remote-forwarder.ts';

const NOBODY = 65534;

/** virsh's outcome as another user: its exit error, or null when it succeeded. */
function virshAs(uid: number, args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('virsh', args, { uid, gid: uid, env: { PATH: process.env['PATH'], HOME: '/nonexistent' }, timeout: 20_000 }, (err, _stdout, stderr) =>
      resolve(err ? `${err.message} ${stderr}` : null),
    );
  });
}

describe('a remote host made by the test: a forwarder to the local libvirtd', () => {
  let forwarder: RemoteForwarder;
  before(async () => {
    forwarder = await startRemoteForwarder();
  });
  after(() => forwarder.close());

  test('qemu+tcp://127.0.0.1:PORT/system reaches the local daemon through the remote driver', async (t) => {
    assert.match(forwarder.uri, /^qemu\+tcp:\/\/127\.0\.0\.1:\d+\/system$/);
    assert.match(forwarder.target, /\/libvirt-sock$/);
    const conn = await libvirt.open(forwarder.uri);
    t.after(() => conn.close());
    assert.equal(await conn.getURI(), forwarder.uri);
    assert.match(await virsh(['version', '--daemon'], forwarder.uri), /Running against daemon/);
  });

  test('it listens on 127.0.0.1 only', async () => {
    const listening = await new Promise<string>((resolve, reject) =>
      execFile('ss', ['-Hltn', `sport = :${forwarder.port}`], (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    const locals = listening
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[3]);
    assert.deepEqual(locals, [`127.0.0.1:${forwarder.port}`]);
  });

  test('another local user is refused: the daemon would take its connection for this process', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root, to run virsh as another user');
    const refused = await virshAs(NOBODY, ['-c', forwarder.uri, 'version']);
    assert.ok(refused !== null, 'virsh as nobody must not reach the daemon');
    assert.doesNotMatch(refused, /authentication|polkit/i, 'refused by the forwarder, before the daemon saw it');
    t.diagnostic(refused.trim().split('\n').at(-1) ?? '');
  });

  test('close() ends its connections and stops listening', async () => {
    const other = await startRemoteForwarder();
    const conn = await libvirt.open(other.uri);
    try {
      const reasons: number[] = [];
      await conn.registerCloseCallback((e) => reasons.push(e.reason));
      await other.close();
      await waitFor(() => reasons.length > 0, { what: 'the connection through the closed forwarder to close' });
      assert.equal(conn.isAlive(), false);
    } finally {
      await conn.close();
    }
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect(other.port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    assert.equal(refused, 'ECONNREFUSED');
  });
});
