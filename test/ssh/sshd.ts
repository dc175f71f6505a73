// An SSH server for the tests, made by the test itself: OpenSSH's sshd on 127.0.0.1 at a free
// port, with a host key, sshd_config and authorized_keys of its own in a throw-away folder (never
// the system's), and the client's side beside it: a passphrase-protected key and an ssh_config
// (given to Strata as STRATA_SSH_CONFIG, as `ssh -F` would be) whose known_hosts file is in that
// folder too. ssh reads ~ from the password database, not $HOME, so only such a config keeps the
// user's own ~/.ssh untouched. The server logs in as the user running the tests, whose libvirtd
// is the machine's; close() stops sshd and removes the folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { runOpenSsh } from '../../src/main/core/hosts/ssh/openssh.ts';

export const SSHD = process.env['STRATA_SSHD'] ?? '/usr/sbin/sshd';

/** Why the SSH tests cannot run here, or null. */
export function sshdMissing(): string | null {
  if (!existsSync(SSHD)) return `${SSHD} is not installed (Debian: apt-get install openssh-server)`;
  return null;
}

export interface TestSshd {
  dir: string;
  port: number;
  user: string;
  /** The client's private key, protected by `passphrase`. */
  clientKey: string;
  passphrase: string;
  /** The ssh_config Strata is given (STRATA_SSH_CONFIG). */
  sshConfig: string;
  /** The known_hosts file that config names. */
  knownHosts: string;
  /** The server's key as `ssh-keygen -l` prints its fingerprint ("SHA256:…"). */
  fingerprint: string;
  /** Writes the server's key into `knownHosts` (plain, as `ssh-keyscan` prints it), replacing what was there. */
  trustHostKey(): Promise<void>;
  /** A qemu+ssh URI for this server, with `extra` URI parameters. */
  uri(extra?: string): string;
  close(): Promise<void>;
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
 * user whom libvirtd refuses runs the remote side as nobody this way).
 */
export async function startSshd(options: { forceCommand?: string } = {}): Promise<TestSshd> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-test-sshd-'));
  const user = userInfo().username;
  const passphrase = 'correct horse battery';
  const clientKey = join(dir, 'client_ed25519');
  const knownHosts = join(dir, 'known_hosts');
  const sshConfig = join(dir, 'ssh_config');
  await keygen(['-t', 'ed25519', '-N', '', '-C', 'strata-test-host', '-f', join(dir, 'host_ed25519')]);
  await keygen(['-t', 'ed25519', '-N', passphrase, '-C', 'strata-test-client', '-f', clientKey]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${clientKey}.pub`, 'utf8'), { mode: 0o600 });
  const fp = await runOpenSsh('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'host_ed25519.pub')]);
  const fingerprint = /(SHA256:\S+)/.exec(fp.stdout)?.[1];
  if (!fingerprint) throw new Error(`ssh-keygen -l printed no fingerprint: ${fp.stdout} ${fp.stderr}`);
  await writeFile(
    sshConfig,
    [
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
        `AllowUsers ${user}`,
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        // The folder is the test's own, under /tmp: sshd's checks of the owner's modes would refuse it.
        'StrictModes no',
        ...(options.forceCommand ? [`ForceCommand ${options.forceCommand}`] : []),
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
    await rm(dir, { recursive: true, force: true });
    throw new Error(`sshd did not start on 127.0.0.1:${port}: ${output}`);
  }
  const sshd = child;
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
    async close() {
      if (sshd.exitCode === null && sshd.signalCode === null) {
        const gone = new Promise<void>((resolve) => sshd.once('exit', () => resolve()));
        sshd.kill('SIGTERM');
        await gone;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
