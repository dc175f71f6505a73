// A Connection the garbage collector takes without close() is still closed, but never on the JS
// thread: closing a remote connection talks to the daemon, and on a link gone silent that blocks
// until keepalive gives up (here ~2 s; by default about half a minute). Checked in a child process
// (it needs --expose-gc) on a remote connection through a link it silences.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { TEST_URI } from '../lab/harness.ts';

const CHILD = fileURLToPath(new URL('./fixtures/gc-close-child.ts', import.meta.url));

describe('a collected connection', { skip: TEST_URI !== 'qemu:///system' && 'needs the local libvirtd (its UNIX socket)' }, () => {
  test('on a silent link: closed (its socket goes once keepalive gives up) while the JS thread never stalls', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', CHILD], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
    assert.equal(out['collected'], true, JSON.stringify(out));
    assert.equal(typeof out['socketClosedMs'], 'number', `the connection was never closed: ${JSON.stringify(out)}`);
    // A 10 ms timer; a close on the JS thread would stall it until keepalive gives up.
    assert.ok(Number(out['maxStallMs']) < 500, JSON.stringify(out));
  });
});
