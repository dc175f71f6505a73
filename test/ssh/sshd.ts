// An SSH server for the tests, made by the test itself: OpenSSH's sshd on 127.0.0.1 at a free
// port, with a host key, sshd_config and authorized_keys of its own in a throw-away folder (never
// the system's), and the client's side beside it: a passphrase-protected key and an ssh_config
// (given to Strata as STRATA_SSH_CONFIG, as `ssh -F` would be) whose known_hosts file is in that
// folder too. ssh reads ~ from the password database, not $HOME, so only such a config keeps the
// user's own ~/.ssh untouched. The server logs in as the user running the tests, whose libvirtd
// is the machine's; close() stops sshd and removes the folder.
//
// With `passwordUser`, sshd also takes a password for a throw-away user the test creates (useradd,
// its password set through chpasswd's stdin, removed by close()). That user may not use libvirtd
// on this machine (polkit refuses everyone but root), so its side reaches libvirtd through a UNIX
// socket only it may open (owned by it, mode 0600), which this process forwards to libvirtd's own:
// the URI names it (`socket=`), with a small Node netcat as libvirt's `netcat=` (the machine has
// no nc). Password logins need no PAM here: sshd with UsePAM no checks /etc/shadow itself.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { runOpenSsh } from '../../src/main/core/hosts/ssh/openssh.ts';
import { findLibvirtSocket } from '../lab/remote-forwarder.ts';

export const SSHD = process.env['STRATA_SSHD'] ?? '/usr/sbin/sshd';

/** Why the SSH tests cannot run here, or null. */
export function sshdMissing(): string | null {
  if (!existsSync(SSHD)) return `${SSHD} is not installed (Debian: apt-get install openssh-server)`;
  return null;
}

/** Why a throw-away password user cannot be made here, or null. */
export function passwordUserMissing(): string | null {
  if (process.getuid?.() !== 0) return 'creating a throw-away user for password logins needs root';
  for (const tool of ['/usr/sbin/useradd', '/usr/sbin/userdel', '/usr/sbin/chpasswd']) if (!existsSync(tool)) return `${tool} is not installed`;
  return null;
}

/** A user made for one test, who logs in with a password. */
export interface PasswordUser {
  name: string;
  password: string;
  /** A qemu+ssh URI that logs in as this user, its libvirt reached through the test's socket. */
  uri(extra?: string): string;
}

export interface TestSshd {
  dir: string;
  port: number;
  user: string;
  /** The client's private key, protected by `passphrase`. */
  clientKey: string;
  passphrase: string;
  /** The ssh_config Strata is given (STRATA_SSH_CONFIG); it logs the password user in with its password. */
  sshConfig: string;
  /** The known_hosts file that config names. */
  knownHosts: string;
  /** The server's key as `ssh-keygen -l` prints its fingerprint ("SHA256:…"). */
  fingerprint: string;
  /** Writes the server's key into `knownHosts` (plain, as `ssh-keyscan` prints it), replacing what was there. */
  trustHostKey(): Promise<void>;
  /** A qemu+ssh URI for this server, with `extra` URI parameters. */
  uri(extra?: string): string;
  /** The throw-away password user, when asked for. */
  passwordUser: PasswordUser | null;
  close(): Promise<void>;
}

function runWithInput(cmd: string, args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve()));
    child.stdin?.end(input);
  });
}

/** The uids of the processes running now. */
async function processUids(): Promise<number[]> {
  const uids: number[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    if (uid !== undefined) uids.push(Number(uid));
  }
  return uids;
}

// libvirt runs `NETCAT -q` once to learn whether it takes -q0, then `NETCAT [-q0] -U SOCKET`.
const NODE_NETCAT = `#!${process.execPath}
const args = process.argv.slice(2);
const at = args.indexOf('-U');
if (at < 0 || !args[at + 1]) { process.stderr.write('usage: nc [-q0] -U SOCKET\\n'); process.exit(1); }
const socket = require('node:net').connect(args[at + 1]);
socket.on('error', (err) => { process.stderr.write(String(err.message) + '\\n'); process.exit(1); });
process.stdin.pipe(socket);
socket.pipe(process.stdout);
socket.on('close', () => process.exit(0));
`;

interface MadeUser {
  name: string;
  password: string;
  remoteDir: string;
  socketPath: string;
  netcat: string;
  close(): Promise<void>;
}

/** The throw-away user, its socket to libvirtd and the netcat it runs. */
async function makePasswordUser(): Promise<MadeUser> {
  const name = `strata-pw-${randomBytes(4).toString('hex')}`;
  const password = randomBytes(15).toString('base64url');
  // The user's side must reach its netcat and socket: a folder of its own outside the 0700 one.
  const remoteDir = await mkdtemp(join(tmpdir(), 'strata-test-sshd-remote-'));
  await chmod(remoteDir, 0o711);
  const netcat = join(remoteDir, 'nc');
  await writeFile(netcat, NODE_NETCAT, { mode: 0o755 });
  await chmod(netcat, 0o755);
  try {
    await new Promise<void>((resolve, reject) =>
      execFile('/usr/sbin/useradd', ['--no-create-home', '--home-dir', remoteDir, '--shell', '/bin/sh', '--comment', 'Strata test, password logins', name], (err, _o, stderr) => (err ? reject(new Error(`useradd ${name}: ${stderr || err.message}`)) : resolve())),
    );
  } catch (err) {
    await rm(remoteDir, { recursive: true, force: true });
    throw err;
  }
  const sockets = new Set<net.Socket>();
  let server: net.Server | null = null;
  const removeUser = async (): Promise<void> => {
    const uid = Number((await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith(`${name}:`))?.split(':')[2] ?? -1);
    // Its sessions end with the connections that used them; userdel refuses while one is left.
    const deadline = Date.now() + 15_000;
    while (uid >= 0 && (await processUids()).includes(uid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise<void>((resolve, reject) =>
      execFile('/usr/sbin/userdel', [name], (err, _o, stderr) => (err && !/does not exist/.test(stderr) ? reject(new Error(`userdel ${name}: ${stderr || err.message}`)) : resolve())),
    );
  };
  try {
    // chpasswd reads the password on its stdin: it is never an argument a process list shows.
    await runWithInput('/usr/sbin/chpasswd', [], `${name}:${password}\n`);
    const uid = Number((await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith(`${name}:`))?.split(':')[2]);
    const target = await findLibvirtSocket();
    const socketPath = join(remoteDir, 'libvirt-sock');
    const listening = net.createServer((client) => {
      const upstream = net.connect(target);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(socketPath, resolve);
    });
    server = listening;
    await chown(socketPath, uid, 0);
    await chmod(socketPath, 0o600);
    return {
      name,
      password,
      remoteDir,
      socketPath,
      netcat,
      async close() {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
        await removeUser();
        await rm(remoteDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const s of sockets) s.destroy();
    server?.close();
    await removeUser().catch(() => undefined);
    await rm(remoteDir, { recursive: true, force: true });
    throw err;
  }
}

async function keygen(args: string[]): Promise<void> {
  const r = await runOpenSsh('ssh-keygen', ['-q', ...args]);
  if (r.code !== 0) throw new Error(`ssh-keygen ${args.join(' ')} failed: ${r.stderr}`);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts sshd. `forceCommand` makes it run every command through that one (the test of a remote
 * user whom libvirtd refuses runs the remote side as nobody this way). `setEnv`: variables every
 * login gets (sshd_config SetEnv).
 */
export async function startSshd(options: { forceCommand?: string; passwordUser?: boolean; setEnv?: Record<string, string> } = {}): Promise<TestSshd> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-test-sshd-'));
  const user = userInfo().username;
  const passphrase = 'correct horse battery';
  const clientKey = join(dir, 'client_ed25519');
  const knownHosts = join(dir, 'known_hosts');
  const sshConfig = join(dir, 'ssh_config');
  const pwUser = options.passwordUser ? await makePasswordUser().catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }) : null;
  await keygen(['-t', 'ed25519', '-N', '', '-C', 'strata-test-host', '-f', join(dir, 'host_ed25519')]);
  await keygen(['-t', 'ed25519', '-N', passphrase, '-C', 'strata-test-client', '-f', clientKey]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${clientKey}.pub`, 'utf8'), { mode: 0o600 });
  const fp = await runOpenSsh('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'host_ed25519.pub')]);
  const fingerprint = /(SHA256:\S+)/.exec(fp.stdout)?.[1];
  if (!fingerprint) throw new Error(`ssh-keygen -l printed no fingerprint: ${fp.stdout} ${fp.stderr}`);
  await writeFile(
    sshConfig,
    [
      // ssh takes the first value it reads: the password user's block comes before Host *.
      ...(pwUser ? [`Match user ${pwUser.name}`, '  PubkeyAuthentication no', '  PasswordAuthentication yes', ''] : []),
      'Host *',
      `  UserKnownHostsFile ${knownHosts}`,
      '  GlobalKnownHostsFile /dev/null',
      // No agent: the passphrase must be asked for, whatever agent the test's user runs.
      '  IdentityAgent none',
      '  IdentitiesOnly yes',
      '  HashKnownHosts yes',
      '  PasswordAuthentication no',
      '  KbdInteractiveAuthentication no',
      '',
    ].join('\n'),
  );
  // sshd started as root insists on its privilege separation folder, which only the
  // distribution's service unit makes.
  if (process.getuid?.() === 0) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

  let child: ChildProcess | null = null;
  let port = 0;
  let output = '';
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await freePort();
    await writeFile(
      join(dir, 'sshd_config'),
      [
        'ListenAddress 127.0.0.1',
        `Port ${port}`,
        `HostKey ${join(dir, 'host_ed25519')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AllowUsers ${user}${pwUser ? ` ${pwUser.name}` : ''}`,
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        // The folder is the test's own, under /tmp: sshd's checks of the owner's modes would refuse it.
        'StrictModes no',
        ...(options.forceCommand ? [`ForceCommand ${options.forceCommand}`] : []),
        // sshd without PAM gives a login no XDG_RUNTIME_DIR: a session libvirt then looks for
        // another daemon than the test's own.
        ...Object.entries(options.setEnv ?? {}).map(([k, v]) => `SetEnv ${k}=${v}`),
        // Last: a Match block holds every line after it.
        ...(pwUser ? [`Match User ${pwUser.name}`, '  PasswordAuthentication yes'] : []),
        '',
      ].join('\n'),
    );
    const started = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    output = '';
    started.stderr?.setEncoding('utf8').on('data', (c: string) => (output += c));
    const exited = new Promise<false>((resolve) => started.once('exit', () => resolve(false)));
    const deadline = Date.now() + 10_000;
    let up = false;
    while (!up && Date.now() < deadline) {
      up = await Promise.race([accepts(port), exited]);
      if (started.exitCode !== null || started.signalCode !== null) break;
    }
    if (up) child = started;
    else started.kill('SIGKILL');
  }
  if (!child) {
    await pwUser?.close();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`sshd did not start on 127.0.0.1:${port}: ${output}`);
  }
  const sshd = child;
  const passwordUser: PasswordUser | null = pwUser
    ? {
        name: pwUser.name,
        password: pwUser.password,
        uri: (extra = '') => `qemu+ssh://${pwUser.name}@127.0.0.1:${port}/system?socket=${pwUser.socketPath}&proxy=netcat&netcat=${pwUser.netcat}${extra ? `&${extra}` : ''}`,
      }
    : null;
  return {
    dir,
    port,
    user,
    clientKey,
    passphrase,
    sshConfig,
    knownHosts,
    fingerprint,
    async trustHostKey() {
      const [type, blob] = (await readFile(join(dir, 'host_ed25519.pub'), 'utf8')).split(' ');
      await writeFile(knownHosts, `[127.0.0.1]:${port} ${type} ${blob}\n`);
    },
    uri: (extra = '') => `qemu+ssh://${user}@127.0.0.1:${port}/system?keyfile=${clientKey}${extra ? `&${extra}` : ''}`,
    passwordUser,
    async close() {
      if (sshd.exitCode === null && sshd.signalCode === null) {
        const gone = new Promise<void>((resolve) => sshd.once('exit', () => resolve()));
        sshd.kill('SIGTERM');
        await gone;
      }
      await pwUser?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
