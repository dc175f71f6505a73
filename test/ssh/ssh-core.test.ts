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
import { spawn } from 'node:child_process';
import { lstat, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { configureLogging } from '../../src/main/log/logger.ts';
import type { HostPrompt } from '../../src/shared/ssh.ts';
import type { Events } from '../../src/shared/contract.ts';
import type { HostInfo } from '../../src/shared/model.ts';
import { runOpenSsh } from '../../src/main/core/hosts/ssh/openssh.ts';
import { startTestCore, type TestCore } from '../core/core-harness.ts';
import { libvirt, sweepStaleLabDomains, TEST_URI, useLabDomain, waitFor, type Connection } from '../lab/harness.ts';
import { passwordUserMissing, sshdMissing, startSshd, type TestSshd } from './sshd.ts';

const missing = sshdMissing();
if (missing) console.log(`SKIPPED: ${missing}`);

const MiB = 1024 * 1024;

/** Sets an environment variable for the rest of the test (Strata's ssh inherits it through libvirt). */
function setEnv(ctx: TestContext, name: string, value: string | undefined): void {
  const saved = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  ctx.after(() => {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  });
}

/** Every log line, debug ones included, for the rest of the test. */
function captureLog(ctx: TestContext): string[] {
  const lines: string[] = [];
  configureLogging({ stderrLevel: 'debug', stderr: (line) => lines.push(line) });
  ctx.after(() => configureLogging({ stderr: (line) => process.stderr.write(line) }));
  return lines;
}

/** The processes whose arguments or environment hold `secret`. */
async function processesHolding(secret: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    for (const what of ['cmdline', 'environ']) {
      const text = await readFile(`/proc/${pid}/${what}`, 'latin1').catch(() => '');
      if (text.includes(secret)) found.push(`${pid} (${what}): ${text.replaceAll('\0', ' ').slice(0, 200)}`);
    }
  }
  return found;
}

/** The regular files under `dir` that hold `secret` (FIFOs and sockets are not read). */
async function filesHolding(dir: string, secret: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(dir, { recursive: true }).catch(() => [] as string[])) {
    const path = join(dir, name);
    if (!(await lstat(path).catch(() => null))?.isFile()) continue;
    if ((await readFile(path, 'latin1').catch(() => '')).includes(secret)) found.push(path);
  }
  return found;
}

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

  it("keys in the user's SSH agent log in without a question, from SSH_AUTH_SOCK or, when Strata has none, from the desktop's agent place", async (ctx) => {
    await sshd.trustHostKey();
    // The test's own agent, in a folder of its own that stands for the user's XDG_RUNTIME_DIR,
    // at the place Debian's openssh-client user unit puts it.
    const runtime = await mkdtemp(join(tmpdir(), 'strata-test-agent-'));
    ctx.after(() => rm(runtime, { recursive: true, force: true }));
    const socket = join(runtime, 'openssh_agent');
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: ['ignore', 'ignore', 'pipe'] });
    const agentGone = new Promise<void>((resolve) => agent.once('exit', () => resolve()));
    ctx.after(async () => {
      if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGTERM');
      await agentGone;
    });
    await waitFor(async () => (await stat(socket).catch(() => null))?.isSocket(), { timeoutMs: 10_000, what: 'ssh-agent to listen' });
    // ssh-add asks its own askpass, which prints the passphrase from its environment: never a file
    // or an argument.
    const askpass = join(runtime, 'askpass');
    await writeFile(askpass, '#!/bin/sh\nprintf \'%s\\n\' "$STRATA_TEST_PASSPHRASE"\n', { mode: 0o700 });
    const added = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn('ssh-add', [sshd.clientKey], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, SSH_AUTH_SOCK: socket, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', STRATA_TEST_PASSPHRASE: sshd.passphrase },
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      child.once('exit', (code) => resolve({ code, stderr }));
    });
    assert.equal(added.code, 0, added.stderr);
    // The test's ssh_config says IdentityAgent none for the other tests: this one lets ssh use the agent.
    const config = join(sshd.dir, 'ssh_config_agent');
    await writeFile(config, `Host *\n  IdentityAgent SSH_AUTH_SOCK\n\n${await readFile(sshd.sshConfig, 'utf8')}`);
    setEnv(ctx, 'STRATA_SSH_CONFIG', config);

    for (const [how, env] of [
      ['SSH_AUTH_SOCK names the agent', { SSH_AUTH_SOCK: socket, XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'] }],
      ['no SSH_AUTH_SOCK, as in an app started from a menu: the agent found under XDG_RUNTIME_DIR', { SSH_AUTH_SOCK: undefined, XDG_RUNTIME_DIR: runtime }],
    ] as const) {
      await ctx.test(how, async (sub) => {
        setEnv(sub, 'SSH_AUTH_SOCK', env.SSH_AUTH_SOCK);
        setEnv(sub, 'XDG_RUNTIME_DIR', env.XDG_RUNTIME_DIR);
        const t = await startTestCore({ uri: TEST_URI });
        sub.after(() => t.close());
        const host = await t.client.call('hosts.add', { uri: sshd.uri() });
        const end = await hostState(t, host.id, (h) => h.state === 'connected' || h.state === 'needs-user', 'the host to connect through the agent');
        assert.equal(end.state, 'connected', `${end.reason}`);
        assert.deepEqual(prompts(t), [], 'no passphrase is asked: the agent holds the key');
      });
    }
  });

  it('qemu+libssh:// and +libssh2://, whose questions need auth callbacks, wait for the user with the qemu+ssh:// URI to use', async (ctx) => {
    await writeFile(sshd.knownHosts, '');
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    const libssh = await t.client.call('hosts.add', { uri: `qemu+libssh://${sshd.user}@127.0.0.1:${sshd.port}/system?known_hosts=${sshd.knownHosts}&keyfile=${sshd.clientKey}` });
    const unknown = await hostState(t, libssh.id, (h) => h.state === 'needs-user', 'the libssh host to wait for the user');
    assert.equal(unknown.access?.kind, 'host-key-unknown');
    assert.match(unknown.reason ?? '', /^qemu\+libssh:\/\/ needs an answer Strata cannot give over that transport \(libvirt: Can't verify the session host key\)/);
    assert.deepEqual(unknown.access?.fixes.map((f) => f.uri), [`qemu+ssh://${sshd.user}@127.0.0.1:${sshd.port}/system?keyfile=${sshd.clientKey}`]);
    await sshd.trustHostKey();
    const libssh2 = await t.client.call('hosts.add', { uri: `qemu+libssh2://${sshd.user}@127.0.0.1:${sshd.port}/system?known_hosts=${sshd.knownHosts}&keyfile=${sshd.clientKey}` });
    const passphrase = await hostState(t, libssh2.id, (h) => h.state === 'needs-user', 'the libssh2 host to wait for the user');
    assert.equal(passphrase.access?.kind, 'passphrase-needed');
    assert.equal(passphrase.retryAt, null);
    assert.deepEqual(prompts(t), [], 'nothing is asked: these transports do not run ssh');
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

describe('password logins over SSH', { skip: missing ?? passwordUserMissing() ?? false, timeout: 180_000 }, () => {
  let sshd: TestSshd;
  let conn: Connection;

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
    sshd = await startSshd({ passwordUser: true });
    await sshd.trustHostKey();
  });
  after(async () => {
    await conn?.close();
    await sshd?.close();
  });

  it('the password is asked through host.prompt: declined, then wrong three times (said so, and not retried), then right; never in an argument, an environment, a file or the log', async (ctx) => {
    const user = sshd.passwordUser!;
    setEnv(ctx, 'STRATA_SSH_CONFIG', sshd.sshConfig);
    setEnv(ctx, 'SSH_AUTH_SOCK', undefined);
    // Strata's askpass folders go here, where the test can look into them.
    const runtime = await mkdtemp(join(tmpdir(), 'strata-test-runtime-'));
    ctx.after(() => rm(runtime, { recursive: true, force: true }));
    setEnv(ctx, 'XDG_RUNTIME_DIR', runtime);
    const lines = captureLog(ctx);
    // A domain of the test's own: the machine may have none when this runs.
    const lab = await useLabDomain(ctx, conn, { virtualSize: 64 * MiB, baseDataBytes: MiB, overlayDataBytes: MiB });
    const t = await startTestCore({ uri: TEST_URI });
    ctx.after(() => t.close());
    const wrong = ['wrong-1-3f9a', 'wrong-2-8c1d', 'wrong-3-77b2'];

    const host = await t.client.call('hosts.add', { uri: user.uri(), label: 'password login' });
    const first = await nextPrompt(t, host.id, 0, 'the password prompt');
    assert.equal(first.kind, 'password');
    assert.match(first.text, new RegExp(`${user.name}@127\\.0\\.0\\.1's password:`));
    assert.equal(first.refused, false);
    let since = t.events.length;
    await t.client.call('host.answerPrompt', { hostId: host.id, promptId: first.promptId, cancel: true });
    const declined = await hostState(t, host.id, (h) => h.state === 'needs-user', 'the host to wait after the declined password', since);
    assert.equal(declined.access?.kind, 'ssh-auth-failed');
    assert.match(declined.reason ?? '', /asked for a password, and none was given/);
    assert.equal(declined.retryAt, null, 'a login that needs the user is not retried by itself');

    const failing = t.client.call('hosts.retry', { hostId: host.id });
    for (const [n, answer] of wrong.entries()) {
      const p = await nextPrompt(t, host.id, n + 1, `password prompt ${n + 1}`);
      assert.equal(p.kind, 'password');
      assert.equal(p.refused, n > 0, 'from the second question on, the prompt says the last password was refused');
      await t.client.call('host.answerPrompt', { hostId: host.id, promptId: p.promptId, answer });
      assert.deepEqual(await filesHolding(runtime, answer), [], 'the answer is in no file of the askpass folders');
    }
    const refused = await failing;
    assert.equal(refused.state, 'needs-user');
    assert.equal(refused.access?.kind, 'ssh-auth-failed');
    assert.match(refused.reason ?? '', /refused the SSH login \(the password given was wrong\)/);
    assert.match(refused.access?.detail ?? '', /Permission denied \(publickey,password\)/);
    assert.equal(refused.retryAt, null, 'three wrong passwords are not tried again and again');
    assert.equal((await t.client.call('hosts.list', {})).find((h) => h.id === host.id)?.state, 'needs-user');
    assert.equal(prompts(t).filter((p) => p.hostId === host.id).length, 4, 'no question after the refusal');

    since = t.events.length;
    const retried = t.client.call('hosts.retry', { hostId: host.id });
    const right = await nextPrompt(t, host.id, 4, 'the password asked again on Retry');
    assert.equal(right.refused, false, 'a new attempt starts afresh');
    await t.client.call('host.answerPrompt', { hostId: host.id, promptId: right.promptId, answer: user.password });
    assert.equal((await retried).state, 'connected');
    const listed = await t.client.call('domains.list', { hostId: host.id });
    assert.ok(listed.some((d) => d.name === lab.name), `the test's domain ${lab.name}, listed through the password login`);

    // While the connection (and its ssh) is up: the password is in no process's arguments or environment.
    assert.deepEqual(await processesHolding(user.password), []);
    for (const secret of [user.password, ...wrong]) {
      assert.deepEqual(await filesHolding(runtime, secret), [], 'nothing left in the askpass folders');
      assert.deepEqual(await filesHolding(t.dataDir, secret), [], "nothing in Strata's data folder");
      assert.deepEqual(lines.filter((l) => l.includes(secret)), [], 'nothing in the log');
    }
    assert.ok(lines.some((l) => /a host asks the user/.test(l) && /kind=password/.test(l)), 'the questions themselves are logged');
  });
});
