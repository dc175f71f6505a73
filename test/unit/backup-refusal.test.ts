// Which hosts can keep backups: a local QEMU host over any transport can, and so can a remote one
// reached over SSH (its sets on that host); a remote one over TLS or TCP is refused, saying why,
// and another driver is refused for that. A remote host's shut-off domains and restores are
// (and restoring into one) refused with what to do instead.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backupRefusal, backupRemote, remoteOfflineRefusal, remoteRestoreIntoRefusal } from '../../src/shared/backup.ts';

describe('backupRefusal', () => {
  it('accepts a local QEMU host, whatever the transport, and a remote one over SSH', () => {
    for (const uri of ['qemu:///system', 'qemu:///session', 'qemu+unix:///system', 'qemu+ssh://localhost/system', 'qemu+ssh://root@lab.example/system', 'qemu+ssh://me@10.0.0.5:2222/session?keyfile=/k']) {
      assert.equal(backupRefusal(uri), null, uri);
    }
  });

  it('refuses a remote QEMU host not reached over SSH, saying Strata reaches its files only through SSH', () => {
    for (const uri of ['qemu+tls://10.0.0.5/system', 'qemu+tcp://far/system', 'qemu+libssh://far/system', 'qemu+libssh2://far/system', 'qemu://far.example/system']) {
      const why = backupRefusal(uri) ?? '';
      assert.match(why, /the host is remote and reached over \S+, not SSH/, uri);
      assert.match(why, /only through SSH; connect it as qemu\+ssh:\/\//, uri);
    }
  });

  it("refuses another driver for its driver", () => {
    for (const uri of ['test:///default', 'xen:///system', 'lxc+ssh://far/']) assert.match(backupRefusal(uri) ?? '', /QEMU's driver/, uri);
  });
});

describe('backupRemote', () => {
  it('names the host an ssh URI logs in to, loopback too; null where the sets are on this machine', () => {
    assert.equal(backupRemote('qemu+ssh://me@10.0.0.5:2222/session?keyfile=/k'), 'me@10.0.0.5:2222');
    assert.equal(backupRemote('qemu+ssh://lab.example/system'), 'lab.example');
    assert.equal(backupRemote('qemu+ssh://u@127.0.0.1:22/session'), 'u@127.0.0.1:22');
    for (const uri of ['qemu:///system', 'qemu+unix:///session', 'qemu+ssh:///system', 'qemu+tls://far/system']) assert.equal(backupRemote(uri), null, uri);
  });

  it("says why a remote shut-off domain's backup and a restore into a remote domain are refused, and what to do", () => {
    assert.match(remoteOfflineRefusal('web 1', 'me@far'), /^web 1 is shut off, and its images are on me@far: .*not offered for a remote host; start the domain/);
    assert.match(remoteRestoreIntoRefusal('me@far'), /^restoring into a remote host's domain is not offered \(the images are on me@far\); restore to a new file there/);
  });
});
