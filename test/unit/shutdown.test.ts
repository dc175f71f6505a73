// How `npm run serve` stops on signals, and the bound both shells put on closing.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { libvirtLogEnv } from '../../src/main/log/libvirt-log.ts';
import { closeWithin } from '../../src/main/boot/close-within.ts';
import { stopOnSignals } from '../../src/main/server/shutdown.ts';

const never = (): Promise<void> => new Promise(() => undefined);

/** A fake process: emits signals, records exit codes and when stop ran. */
function harness(stop: () => Promise<void>, timeoutMs = 50) {
  const source = new EventEmitter();
  const exits: number[] = [];
  let stops = 0;
  let exited: () => void = () => undefined;
  const exitedOnce = new Promise<void>((resolve) => (exited = resolve));
  stopOnSignals({
    source,
    timeoutMs,
    stop: () => {
      stops++;
      return stop();
    },
    exit: (code) => {
      exits.push(code);
      exited();
    },
  });
  return { source, exits, stops: () => stops, exited: exitedOnce };
}

describe('closeWithin', () => {
  it('is true when closing ends in time', async () => {
    assert.equal(await closeWithin(() => Promise.resolve(), 1000), true);
  });
  it('is false after the bound when closing hangs', async () => {
    const started = Date.now();
    assert.equal(await closeWithin(never, 50), false);
    assert.ok(Date.now() - started < 1000);
  });
  it('is false, without throwing, when closing fails', async () => {
    assert.equal(await closeWithin(() => Promise.reject(new Error('libvirtd went away')), 1000), false);
  });
});

describe('stopOnSignals', () => {
  it('SIGTERM: closes, then exits 0', async () => {
    const h = harness(() => Promise.resolve());
    h.source.emit('SIGTERM', 'SIGTERM');
    await h.exited;
    assert.equal(h.stops(), 1);
    assert.deepEqual(h.exits, [0]);
  });

  it('SIGINT while closing hangs: exits 1 once the bound has passed', async () => {
    const h = harness(never, 50);
    h.source.emit('SIGINT', 'SIGINT');
    await h.exited;
    assert.deepEqual(h.exits, [1]);
  });

  it('a second signal exits at once with 128 + its number, without closing again', async () => {
    const h = harness(never, 10_000);
    h.source.emit('SIGINT', 'SIGINT');
    h.source.emit('SIGINT', 'SIGINT');
    await h.exited;
    assert.equal(h.stops(), 1);
    assert.deepEqual(h.exits, [130]);
  });
});

describe('libvirtLogEnv (--verbose)', () => {
  it('logs the API and the remote driver to <dataDir>/logs/libvirt.log', () => {
    const r = libvirtLogEnv('/data', {});
    assert.deepEqual(r.set, { LIBVIRT_LOG_FILTERS: '1:libvirt 1:remote', LIBVIRT_LOG_OUTPUTS: '1:file:/data/logs/libvirt.log' });
  });
  it("keeps the user's own libvirt logging", () => {
    const r = libvirtLogEnv('/data', { LIBVIRT_DEBUG: '1' });
    assert.deepEqual(r.set, {});
    assert.match(r.note, /LIBVIRT_DEBUG/);
  });
  it('sets nothing for a path with a space (libvirt cannot quote it)', () => {
    assert.deepEqual(libvirtLogEnv('/my data', {}).set, {});
  });
});
