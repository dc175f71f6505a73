// Which hosts can keep backups: a local QEMU host over any transport can, a remote one is refused
// for where its sets would live (not for its driver), and another driver is refused for that.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backupRefusal } from '../../src/shared/backup.ts';

describe('backupRefusal', () => {
  it('accepts a local QEMU host, whatever the transport', () => {
    for (const uri of ['qemu:///system', 'qemu:///session', 'qemu+unix:///system', 'qemu+ssh://localhost/system']) assert.equal(backupRefusal(uri), null, uri);
  });

  it('refuses a remote QEMU host for where its sets would live', () => {
    for (const uri of ['qemu+ssh://root@lab.example/system', 'qemu+tls://10.0.0.5/system', 'qemu+libssh://far/system']) {
      assert.match(backupRefusal(uri) ?? '', /the host is remote/, uri);
    }
  });

  it("refuses another driver for its driver", () => {
    for (const uri of ['test:///default', 'xen:///system', 'lxc+ssh://far/']) assert.match(backupRefusal(uri) ?? '', /QEMU's driver/, uri);
  });
});
