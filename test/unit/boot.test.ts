// The one start both shells share, on libvirt's in-process test driver: the data folder and its
// log are made, the core comes up with its default host, and an unusable data folder is one line
// that says what to do.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { boot } from '../../src/main/boot/boot.ts';
import { StartupError } from '../../src/main/core/storage/data-dir.ts';

describe('boot', async () => {
  const root = await mkdtemp(join(tmpdir(), 'strata-boot-'));
  const before = process.env['STRATA_DATA_DIR'];
  after(async () => {
    if (before === undefined) delete process.env['STRATA_DATA_DIR'];
    else process.env['STRATA_DATA_DIR'] = before;
    await rm(root, { recursive: true, force: true });
  });

  it('makes the data folder, logs there, and starts the core with the default host', async () => {
    const dataDir = join(root, 'data');
    process.env['STRATA_DATA_DIR'] = dataDir;
    const booted = await boot({ uri: 'test:///default', verbose: false }, 'a test');
    try {
      assert.equal(booted.dataDir, dataDir);
      assert.equal(booted.uri, 'test:///default');
      assert.equal(booted.logFile, join(dataDir, 'logs', 'strata.log'));
      assert.ok(existsSync(booted.logFile));
      const hosts = await booted.core.service['hosts.list']();
      assert.deepEqual(hosts.map((h) => [h.uri, h.state]), [['test:///default', 'connected']]);
      assert.deepEqual(booted.core.startupWarnings, []);
    } finally {
      await booted.core.close();
    }
  });

  it('a data folder that cannot be used is a StartupError in one line, naming it and the way out', async () => {
    const file = join(root, 'a-file');
    await writeFile(file, '');
    process.env['STRATA_DATA_DIR'] = file;
    await assert.rejects(boot({ uri: 'test:///default', verbose: false }, 'a test'), (err: unknown) => {
      assert.ok(err instanceof StartupError);
      assert.match(err.message, /^cannot use the data folder .*a-file \(EEXIST.*\): .*STRATA_DATA_DIR/);
      assert.ok(!err.message.includes('\n'));
      return true;
    });
  });
});
