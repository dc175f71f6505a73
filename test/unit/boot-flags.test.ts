// The flags, read once by each way Strata starts: the app among Electron's own arguments, the
// headless server strictly, with a message that names the flag and what it should be.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { appFlags, FlagError, serveFlags } from '../../src/main/boot/flags.ts';

describe('appFlags', () => {
  it('finds --uri and --verbose among Electron’s and Chromium’s own arguments', () => {
    assert.deepEqual(appFlags(['/opt/strata', '--no-sandbox', '--uri', 'qemu+ssh://root@kvm1/system', '--verbose']), { uri: 'qemu+ssh://root@kvm1/system', verbose: true });
    assert.deepEqual(appFlags(['--uri=test:///default']), { uri: 'test:///default', verbose: false });
    assert.deepEqual(appFlags(['.', '--enable-features=X']), { uri: undefined, verbose: false });
  });
});

describe('serveFlags', () => {
  it('takes its own flags, with a free port on loopback by default', () => {
    assert.deepEqual(serveFlags([]), { uri: undefined, verbose: false, port: 0, listen: '127.0.0.1' });
    assert.deepEqual(serveFlags(['--uri', 'test:///default', '--port', '8080', '--listen', 'localhost', '-v']), { uri: 'test:///default', verbose: true, port: 8080, listen: '127.0.0.1' });
    assert.equal(serveFlags(['--help']), 'help');
  });

  it('refuses what it cannot take, naming the flag', () => {
    for (const [argv, message] of [
      [['--port', '70000'], /--port must be a whole number from 0 to 65535, not '70000'/],
      [['--port', '1.5'], /--port must be a whole number/],
      [['--listen', 'example.com'], /--listen must be an IP address of this machine/],
      [['--no-sandbox'], /--no-sandbox/],
      [['stray'], /stray/],
    ] as const) {
      assert.throws(() => serveFlags(argv), (err: unknown) => err instanceof FlagError && message.test(err.message), argv.join(' '));
    }
  });
});
