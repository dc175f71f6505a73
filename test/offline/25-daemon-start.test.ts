// A qemu-storage-daemon whose monitor never answers, and a cancel while such a daemon starts.
// QEMU cannot be made to stall its monitor on demand, so the daemon here is a stand-in
// (fixtures/silent-qemu-storage-daemon.mjs) that listens on the socket it is given and greets, or
// not, but never answers; the images are real. Before the start's handshake had a deadline, a
// daemon that greeted but never answered `qmp_capabilities` held its job's start for ever, and
// a cancel then could not end it: a restore aborted in the window ran on to its end.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { daemonsUnder, makeChain, MiB, useLabDir } from './offline-harness.ts';

const standIn = fileURLToPath(new URL('./fixtures/silent-qemu-storage-daemon.mjs', import.meta.url));
// Read by the engine when it loads, so set before the import below.
process.env['STRATA_QEMU_STORAGE_DAEMON'] = standIn;
const { OfflineJob } = await import('../../src/main/core/offline/offline-job.ts');
const { StorageDaemon, StorageDaemonError, chainBlockdevs } = await import('../../src/main/core/offline/storage-daemon.ts');
const { readImageChain } = await import('../../src/main/core/offline/image-tool.ts');

/** Waits until the stand-in serving `dir`'s images runs (it names them in its arguments). */
async function standInRunning(dir: string): Promise<void> {
  for (let delay = 5; (await daemonsUnder(dir)).length === 0; delay = Math.min(delay * 2, 100)) {
    await new Promise((r) => setTimeout(r, delay));
  }
}

describe('a daemon whose monitor never answers', () => {
  for (const greets of [false, true]) {
    it(`fails its start within the start timeout when it ${greets ? 'greets but never answers qmp_capabilities' : 'never greets'}, and is killed`, async (t) => {
      process.env['STRATA_FAKE_QMP_GREETS'] = greets ? '1' : '0';
      t.after(() => delete process.env['STRATA_FAKE_QMP_GREETS']);
      const chain = await makeChain(await useLabDir(t, 'silent-daemon'), { writes: [[[0, MiB]]] });
      await assert.rejects(
        StorageDaemon.start({ nodes: chainBlockdevs(await readImageChain(chain.active), new Set()), startTimeoutMs: 1_000 }),
        (err: unknown) => err instanceof StorageDaemonError && !err.cancelled && /did not answer on .* within 1000 ms/.test(err.message),
      );
      assert.deepEqual(await daemonsUnder(chain.dir), []);
    });
  }

  it('ends a copy cancelled while its daemon starts as cancelled, at once, with no daemon and no new file left', async (t) => {
    process.env['STRATA_FAKE_QMP_GREETS'] = '1';
    t.after(() => delete process.env['STRATA_FAKE_QMP_GREETS']);
    const chain = await makeChain(await useLabDir(t, 'cancel-in-start'), { writes: [[[0, MiB]], [[0, 65536]]] });
    const destination = join(chain.dir, 'copy.qcow2');
    const job = await OfflineJob.start({
      domain: 'none',
      disk: 'vda',
      operation: { kind: 'copy', image: chain.active, destination, format: 'qcow2', shallow: false },
      bandwidthBytesPerSec: 0,
    });
    await standInRunning(chain.dir);
    await job.cancel();
    const outcome = await job.done;
    assert.equal(outcome.status, 'cancelled');
    // Not the start's own timeout (15 s): the cancel ended the start.
    assert.match(outcome.message ?? '', /stopped as it started: the job was cancelled/);
    assert.deepEqual(await daemonsUnder(chain.dir), []);
    assert.equal(existsSync(destination), false, 'the new file is removed');
    assert.equal(outcome.leftover, null);
  });
});
