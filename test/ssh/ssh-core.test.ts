// Hosts over SSH through the contract, against a real sshd the test starts on 127.0.0.1 (its own
// host key, authorized_keys and sshd_config) and this machine's libvirtd behind it: the unknown
// host key shown by its fingerprint and trusted (known_hosts written as ssh writes it, hashed), the
// key's passphrase asked through Strata's askpass, a wrong one said as such, a domain's chain read
// through SSH; a changed host key refused with its warning; and failures named by kind: a declined
// passphrase, a remote without nc, a remote user libvirtd refuses, an sshd that is not there; and
// behind ProxyJump, ssh's own host-key questions answered through the same prompts.
// Strata runs in this process: its ssh gets no terminal of its own (SSH_ASKPASS_REQUIRE=force),
// and the test's process runs under setsid in the e2e test, where the page answers instead.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { HostPrompt } from '../../src/shared/ssh.ts';
import type { Events } from '../../src/shared/contract.ts';
import type { HostInfo } from '../../src/shared/model.ts';
import { runOpenSsh } from '../../src/main/core/hosts/ssh/openssh.ts';
import { startTestCore, type TestCore } from '../core/core-harness.ts';
import { libvirt, sweepStaleLabDomains, TEST_URI, useLabDomain, waitFor, type Connection } from '../lab/harness.ts';
import { sshdMissing, startSshd, type TestSshd } from './sshd.ts';

const missing = sshdMissing();
if (missing) console.log(`SKIPPED: ${missing}`);

const MiB = 1024 * 1024;

function prompts(t: TestCore): HostPrompt[] {
  return t.events.filter((e) => e.event === 'host.prompt').map((e) => e.data as Events['host.prompt']);
}

function nextPrompt(t: TestCore, hostId: string, seen: number, what: string): Promise<HostPrompt> {
  return waitFor(() => prompts(t).filter((p) => p.hostId === hostId)[seen], { timeoutMs: 30_000, what });
}

/** The latest `host` event of the host that matches, among those after the first `since` events. */
function hostState(t: TestCore, hostId: string, match: (h: HostInfo) => boolean, what: string, since = 0): Promise<HostInfo> {
  return waitFor(
    () => t.events.slice(since).filter((e) => e.event === 'host').map((e) => e.data as HostInfo).filter((h) => h.id === hostId && match(h)).at(-1),
    { timeoutMs: 30_000, what },
  );
}

describe('hosts over SSH', { skip: missing ?? false, timeout: 240_000 }, () => {
  let sshd: TestSshd;
  let conn: Connection;
  const savedConfig = process.env['STRATA_SSH_CONFIG'];

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
    sshd = await startSshd();
    process.env['STRATA_SSH_CONFIG'] = sshd.sshConfig;
  });
  after(async () => {
    if (savedConfig === undefined) delete process.env['STRATA_SSH_CONFIG'];
    else process.env['STRATA_SSH_CONFIG'] = savedConfig;
    await conn?.close();
    await sshd?.close();
  });

  it('an unknown host key is shown by its fingerprint and trusted; the passphrase is asked, a wrong one said so; the chain is read through SSH', async (ctx) => {
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    const lab = await useLabDomain(ctx, conn, { virtualSize: 64 * MiB, baseDataBytes: 2 * MiB, overlayDataBytes: MiB });

    const added = await t.client.call('hosts.add', { uri: sshd.uri(), label: 'loopback over SSH' });
    const waiting = await hostState(t, added.id, (h) => h.state === 'needs-user', 'the host to wait for the key to be trusted');
    assert.equal(waiting.access?.kind, 'host-key-unknown');
    assert.match(waiting.reason ?? '', new RegExp(sshd.fingerprint.replace(/[+/]/g, '\\$&')));
    const keyPrompt = await nextPrompt(t, added.id, 0, 'the host-key prompt');
    assert.equal(keyPrompt.kind, 'host-key');
    assert.equal(keyPrompt.fingerprint, sshd.fingerprint, 'the fingerprint ssh-keygen -l prints for the server key');
    assert.equal(keyPrompt.knownAs, `[127.0.0.1]:${sshd.port}`);
    assert.equal(keyPrompt.knownHostsFile, sshd.knownHosts);
    assert.deepEqual(await t.client.call('host.prompts', {}), [keyPrompt]);
    assert.equal(await readFile(sshd.knownHosts, 'utf8').catch(() => ''), '', 'nothing is written before the user trusts the key');

    const wrongAnswer = await t.client.call('host.answerPrompt', { hostId: added.id, promptId: keyPrompt.promptId, answer: 'yes' }).catch((e: unknown) => e);
    assert.match(String(wrongAnswer), /answered with 'trust'/);
    assert.deepEqual(await t.client.call('host.answerPrompt', { hostId: added.id, promptId: keyPrompt.promptId, answer: 'trust' }), { delivered: true });

    const known = await readFile(sshd.knownHosts, 'utf8');
    assert.match(known, /^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 AAAA\S+\n$/, 'one hashed line, as HashKnownHosts yes writes it');
    const found = await runOpenSsh('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', sshd.knownHosts]);
    assert.equal(found.code, 0, 'ssh-keygen -F finds the host under its hashed name');

    const first = await nextPrompt(t, added.id, 1, 'the passphrase prompt');
    assert.equal(first.kind, 'passphrase');
    assert.match(first.text, new RegExp(`Enter passphrase for key '${sshd.clientKey}'`));
    assert.equal(first.refused, false);
    await t.client.call('host.answerPrompt', { hostId: added.id, promptId: first.promptId, answer: 'not the passphrase' });
    const again = await nextPrompt(t, added.id, 2, 'the passphrase asked again');
    assert.equal(again.kind, 'passphrase');
    assert.equal(again.refused, true, 'the second question says the first answer was wrong');
    await t.client.call('host.answerPrompt', { hostId: added.id, promptId: again.promptId, answer: sshd.passphrase });

    await hostState(t, added.id, (h) => h.state === 'connected', 'the host to connect over SSH');
    assert.deepEqual(await t.client.call('host.prompts', {}), [], 'no question is left');
    const overSsh = await t.client.call('domain.get', { hostId: added.id, domain: lab.name });
    const local = await t.client.call('domain.get', { hostId: 'default', domain: lab.name });
    assert.deepEqual(overSsh.disks.map((d) => d.chain.map((l) => l.path)), local.disks.map((d) => d.chain.map((l) => l.path)));
    assert.equal(overSsh.disks[0]?.chain.length, 3, "the lab's three layers, through SSH");

  });

  it('a changed host key is refused with its warning, and known_hosts is left alone', async (ctx) => {
    const other = await runOpenSsh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(sshd.dir, 'impostor')]);
    assert.equal(other.code, 0, other.stderr);
    const impostor = (await readFile(join(sshd.dir, 'impostor.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
    const before = `[127.0.0.1]:${sshd.port} ${impostor}\n`;
    await writeFile(sshd.knownHosts, before);
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());

    const added = await t.client.call('hosts.add', { uri: sshd.uri() });
    const refused = await hostState(t, added.id, (h) => h.state === 'needs-user', 'the changed key to be refused');
    assert.equal(refused.access?.kind, 'host-key-changed');
    assert.match(refused.reason ?? '', /WARNING: .*host key has changed/);
    assert.match(refused.reason ?? '', new RegExp(sshd.fingerprint.replace(/[+/]/g, '\\$&')));
    assert.match(refused.hint ?? '', /man-in-the-middle/);
    assert.match(refused.hint ?? '', /reinstalled/);
    assert.match(refused.access?.fixes[0]?.command ?? '', /^ssh-keygen -R '\[127\.0\.0\.1\]:\d+' -f /);
    assert.deepEqual(prompts(t), [], 'nothing to accept: a changed key is never offered for trust');
    assert.equal(await readFile(sshd.knownHosts, 'utf8'), before);
    assert.equal((await t.client.call('hosts.retry', { hostId: added.id })).access?.kind, 'host-key-changed', 'Retry refuses it again');
  });

  it('a declined passphrase waits for the user; three wrong ones are a refused login that says the passphrase was wrong', async (ctx) => {
    await writeFile(sshd.knownHosts, '');
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    const added = await t.client.call('hosts.add', { uri: sshd.uri() });
    const key = await nextPrompt(t, added.id, 0, 'the host-key prompt');
    await t.client.call('host.answerPrompt', { hostId: added.id, promptId: key.promptId, answer: 'trust' });
    const asked = await nextPrompt(t, added.id, 1, 'the passphrase prompt');
    const since = t.events.length;
    await t.client.call('host.answerPrompt', { hostId: added.id, promptId: asked.promptId, cancel: true });
    const declined = await hostState(t, added.id, (h) => h.state === 'needs-user', 'the host to wait after the declined passphrase', since);
    assert.equal(declined.access?.kind, 'passphrase-needed');
    assert.match(declined.hint ?? '', /passphrase/);

    const retried = t.client.call('hosts.retry', { hostId: added.id });
    for (let n = 2; n < 5; n++) {
      const p = await nextPrompt(t, added.id, n, `passphrase prompt ${n - 1}`);
      await t.client.call('host.answerPrompt', { hostId: added.id, promptId: p.promptId, answer: `wrong ${n}` });
    }
    const failed = await retried;
    assert.equal(failed.state, 'needs-user');
    assert.equal(failed.access?.kind, 'ssh-auth-failed');
    assert.match(failed.reason ?? '', /the passphrase given was wrong/);
    assert.match(failed.access?.detail ?? '', /Permission denied \(publickey\)/);
  });

  it('StrictHostKeyChecking accept-new takes a new key without asking, as ssh would', async (ctx) => {
    await writeFile(sshd.knownHosts, '');
    const config = join(sshd.dir, 'ssh_config_accept_new');
    await writeFile(config, `Host *\n  StrictHostKeyChecking accept-new\n\n${await readFile(sshd.sshConfig, 'utf8')}`);
    process.env['STRATA_SSH_CONFIG'] = config;
    ctx.after(() => (process.env['STRATA_SSH_CONFIG'] = sshd.sshConfig));
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    const added = await t.client.call('hosts.add', { uri: sshd.uri() });
    const asked = await nextPrompt(t, added.id, 0, 'the passphrase prompt');
    assert.equal(asked.kind, 'passphrase', 'no question about the key');
    await t.client.call('host.answerPrompt', { hostId: added.id, promptId: asked.promptId, answer: sshd.passphrase });
    await hostState(t, added.id, (h) => h.state === 'connected', 'the host to connect');
    assert.equal((await runOpenSsh('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', sshd.knownHosts])).code, 0);
  });

  it('removing a host while ssh waits for its passphrase declines the question and does not wait for the user', async (ctx) => {
    await sshd.trustHostKey();
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    const added = await t.client.call('hosts.add', { uri: sshd.uri() });
    const asked = await nextPrompt(t, added.id, 0, 'the passphrase prompt');
    assert.equal(asked.kind, 'passphrase');
    assert.deepEqual(await t.client.call('hosts.remove', { hostId: added.id }), { removed: added.id });
    const closed = t.events.find((e) => e.event === 'host.promptClosed' && (e.data as Events['host.promptClosed']).promptId === asked.promptId);
    assert.equal((closed?.data as Events['host.promptClosed'] | undefined)?.end, 'gone');
    assert.deepEqual(await t.client.call('host.prompts', {}), []);
  });

  it('a remote without nc (libvirt told to use it) and an sshd that is not there are named by kind', async (ctx) => {
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    await sshd.trustHostKey();
    const noNc = await t.client.call('hosts.add', { uri: sshd.uri('socket=/run/libvirt/libvirt-sock&proxy=netcat&netcat=strata-no-such-nc') });
    const pass = await nextPrompt(t, noNc.id, 0, 'the passphrase prompt');
    assert.equal(pass.kind, 'passphrase', 'a key already in known_hosts is not asked about');
    await t.client.call('host.answerPrompt', { hostId: noNc.id, promptId: pass.promptId, answer: sshd.passphrase });
    const none = await hostState(t, noNc.id, (h) => h.state === 'needs-user', 'the missing nc to be named');
    assert.equal(none.access?.kind, 'ssh-remote-no-libvirt');
    assert.match(none.access?.detail ?? '', /strata-no-such-nc: not found/);

    const down = await t.client.call('hosts.add', { uri: `qemu+ssh://${sshd.user}@127.0.0.1:1/system` });
    const retrying = await hostState(t, down.id, (h) => h.state === 'retrying' && h.reason !== null, 'the unreachable host to back off');
    assert.match(retrying.reason ?? '', /Connection refused/);
    assert.match(retrying.hint ?? '', /ssh could not reach 127\.0\.0\.1/);
    assert.equal(retrying.access, null);
    assert.notEqual(retrying.retryAt, null, 'a network failure backs off and retries');
  });

  it("behind ProxyJump, where ssh-keyscan cannot look, ssh's own host-key questions come as host-key prompts", async (ctx) => {
    await writeFile(sshd.knownHosts, '');
    const config = join(sshd.dir, 'ssh_config_jump');
    // The jump host is the same sshd under another name (ssh refuses a jump to the target itself);
    // the target is reached through it with ssh -W.
    const base = await readFile(sshd.sshConfig, 'utf8');
    await writeFile(config, `Host strata-behind-jump\n  Hostname 127.0.0.1\n  Port ${sshd.port}\n  ProxyJump ${sshd.user}@localhost:${sshd.port}\n  IdentityFile ${sshd.clientKey}\n\nHost localhost\n  IdentityFile ${sshd.clientKey}\n\n${base}`);
    process.env['STRATA_SSH_CONFIG'] = config;
    ctx.after(() => (process.env['STRATA_SSH_CONFIG'] = sshd.sshConfig));
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    const added = await t.client.call('hosts.add', { uri: `qemu+ssh://${sshd.user}@strata-behind-jump/system?keyfile=${sshd.clientKey}` });
    const kinds: string[] = [];
    for (let n = 0; ; n++) {
      const next = await Promise.race([
        nextPrompt(t, added.id, n, 'the next question'),
        hostState(t, added.id, (h) => h.state === 'connected' || h.state === 'needs-user', 'the host to connect'),
      ]);
      if (!('promptId' in next)) {
        assert.equal(next.state, 'connected', `${next.reason}`);
        break;
      }
      kinds.push(next.kind);
      if (next.kind === 'host-key') {
        assert.equal(next.fingerprint, sshd.fingerprint, next.text);
        assert.match(next.text, /authenticity of host/);
      }
      await t.client.call('host.answerPrompt', { hostId: added.id, promptId: next.promptId, answer: next.kind === 'host-key' ? 'trust' : sshd.passphrase });
    }
    assert.deepEqual(kinds.filter((k) => k === 'host-key'), ['host-key', 'host-key'], `the jump host's key and the target's (${kinds.join(', ')})`);
    for (const name of [`[localhost]:${sshd.port}`, `[127.0.0.1]:${sshd.port}`]) {
      const found = await runOpenSsh('ssh-keygen', ['-F', name, '-f', sshd.knownHosts]);
      assert.equal(found.code, 0, `ssh itself wrote ${name}'s key once trusted`);
    }
  });

  it('a remote user whom libvirtd refuses is named so', { skip: process.getuid?.() === 0 ? false : 'the remote side is made to run as nobody with setpriv, which needs root' }, async (ctx) => {
    // The remote side runs as nobody: libvirtd on this machine then refuses it, in its own words.
    const asNobody = await startSshd({ forceCommand: 'setpriv --reuid=65534 --regid=65534 --clear-groups /bin/sh -c "$SSH_ORIGINAL_COMMAND"' });
    ctx.after(() => asNobody.close());
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    process.env['STRATA_SSH_CONFIG'] = asNobody.sshConfig;
    ctx.after(() => (process.env['STRATA_SSH_CONFIG'] = sshd.sshConfig));
    const added = await t.client.call('hosts.add', { uri: asNobody.uri() });
    const key = await nextPrompt(t, added.id, 0, 'the host-key prompt');
    await t.client.call('host.answerPrompt', { hostId: added.id, promptId: key.promptId, answer: 'trust' });
    const pass = await nextPrompt(t, added.id, 1, 'the passphrase prompt');
    const since = t.events.length;
    await t.client.call('host.answerPrompt', { hostId: added.id, promptId: pass.promptId, answer: asNobody.passphrase });
    const refused = await hostState(t, added.id, (h) => h.state === 'needs-user', 'libvirtd to refuse the remote user', since);
    assert.equal(refused.access?.kind, 'ssh-remote-refused', `${refused.reason}`);
    assert.match(refused.hint ?? '', /libvirt group/);
  });
});
