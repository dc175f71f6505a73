import assert from 'node:assert/strict';
import { test } from 'node:test';
import { offlineRefusal } from '../../src/main/core/offline/local-host.ts';

test('offline operations are offered on local URIs only, and the refusal says why', () => {
  for (const uri of ['qemu:///system', 'qemu:///session', 'qemu+unix:///system']) assert.equal(offlineRefusal(uri), null, uri);
  for (const uri of ['qemu+ssh://admin@host/system', 'qemu+tcp://127.0.0.1/system', 'qemu+tls://h/system']) {
    assert.match(offlineRefusal(uri) ?? '', /need the disk images on this machine/, uri);
  }
  assert.match(offlineRefusal('not a uri') ?? '', /not a libvirt URI/);
});
