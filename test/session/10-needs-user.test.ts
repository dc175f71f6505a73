// A failure only the user can fix stops the backoff: the host waits in 'needs-user' with the
// problem's kind and fixes, tries again when the path it watches changes (the daemon's socket
// appears or is made again), and on Retry. Real sockets: a missing one, one nobody listens on
// (bound, never listening: what a crashed daemon leaves), and a link to the real daemon's socket
// as the daemon "coming back".
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { HostInfo } from '../../src/shared/model.ts';
import { defaultHostId } from '../../src/main/core/api/core.ts';
import { LibvirtConnection } from '../../src/main/libvirt/connection.ts';
import { defaultSocket, localUri } from '../../src/main/core/hosts/local-access.ts';
import { startTestCore, type TestCore } from '../core/core-harness.ts';
import { TEST_URI, waitFor } from '../lab/harness.ts';

const instance = localUri(TEST_URI)?.instance ?? 'system';
const realSocket = defaultSocket({ instance, socket: null });

/** The host events received so far, in order. */
const hostStates = (t: TestCore): HostInfo[] => t.events.filter((e) => e.event === 'host').map((e) => e.data as HostInfo);

function waitForState(t: TestCore, state: HostInfo['state'], from = 0): Promise<HostInfo> {
  return waitFor(() => hostStates(t).slice(from).find((h) => h.state === state), { what: `the host to be ${state}`, timeoutMs: 20_000 });
}

/** A UNIX socket that is bound but never listened on: connecting is refused, as after a crash. */
function staleSocket(path: string): void {
  execFileSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', path]);
}

describe('a host that needs the user', () => {
  let dir: string;
  // Keeps a session daemon up (libvirt starts one per user on demand, and it exits when idle).
  let keep: LibvirtConnection | null = null;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-needs-user-'));
    keep = await LibvirtConnection.open(`qemu:///${instance}`);
  });
  after(async () => {
    await keep?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('waits for a missing socket without retrying, and connects when it appears', async () => {
    const socket = join(dir, 'missing', 'run', 'libvirt-sock');
    const t = await startTestCore({ uri: `qemu+unix:///${instance}?socket=${socket}` });
    try {
      const [host] = await t.client.call('hosts.list', {});
      assert.equal(host?.state, 'needs-user');
      assert.equal(host?.access?.kind, 'socket-missing');
      assert.deepEqual(host?.access?.watching, [socket]);
      assert.equal(host?.retryAt, null, 'no retry is scheduled');
      assert.match(host?.hint ?? '', /Strata connects when the socket appears/);
      assert.ok(host?.access?.fixes.some((f) => f.command?.includes('systemctl')), 'starting the daemon is offered');
      const waiting = hostStates(t).length;
      // Two folders to make on the way: the watch moves down as each appears.
      await mkdir(join(dir, 'missing', 'run'), { recursive: true });
      await symlink(realSocket, socket);
      const connected = await waitForState(t, 'connected', waiting);
      assert.equal(connected.access, null);
      assert.deepEqual(
        hostStates(t).slice(waiting).map((h) => h.state),
        ['connecting', 'connected'],
        'one attempt, after the socket appeared, and none before',
      );
      assert.ok((await t.client.call('domains.list', { hostId: defaultHostId })).length >= 0);
    } finally {
      await t.close();
    }
  });

  it('names a daemon that does not answer, tries again on Retry, and connects when the socket is made again', async () => {
    const socket = join(dir, 'stale-sock');
    staleSocket(socket);
    const t = await startTestCore({ uri: `qemu+unix:///${instance}?socket=${socket}` });
    try {
      const [host] = await t.client.call('hosts.list', {});
      assert.equal(host?.state, 'needs-user');
      assert.equal(host?.access?.kind, 'daemon-not-running');
      assert.match(host?.access?.detail ?? '', /Connection refused/);
      const before = hostStates(t).length;
      const retried = await t.client.call('hosts.retry', { hostId: defaultHostId });
      assert.equal(retried.state, 'needs-user', 'still refused');
      assert.deepEqual(
        hostStates(t).slice(before).map((h) => h.state),
        ['connecting', 'needs-user'],
        'Retry made one attempt',
      );
      const waiting = hostStates(t).length;
      // Replaced in one step, as a daemon that starts again makes its socket anew.
      await symlink(realSocket, `${socket}.new`);
      await rename(`${socket}.new`, socket);
      await waitForState(t, 'connected', waiting);
    } finally {
      await t.close();
    }
  });

  it('keeps retrying a remote host that does not answer: that may pass by itself', async () => {
    const t = await startTestCore({ uri: 'qemu+tcp://127.0.0.1:1/system' });
    try {
      const [host] = await t.client.call('hosts.list', {});
      assert.equal(host?.state, 'retrying');
      assert.equal(host?.access, null);
    } finally {
      await t.close();
    }
  });
});
