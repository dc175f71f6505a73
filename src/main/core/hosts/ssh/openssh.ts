// OpenSSH's own tools, run the way `ssh` itself would see things: `ssh -G` for the options that
// apply to a host after ~/.ssh/config (or the file STRATA_SSH_CONFIG names, like `ssh -F`),
// `ssh-keyscan` for the keys a server offers, `ssh-keygen` for fingerprints and known_hosts
// lookups. No shell: argument arrays, each with a timeout.
import { spawn } from 'node:child_process';
import { StrataError } from '../../../../shared/errors.ts';

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `tool` with `args`, `input` on its stdin; resolves whatever the exit code (callers judge it). */
export function runOpenSsh(tool: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 15_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT'
          ? new StrataError('unavailable', `${tool} was not found in PATH: Strata needs OpenSSH's client tools to reach hosts over SSH`, {
              hint: 'Install them (Debian: apt-get install openssh-client; Fedora: dnf install openssh-clients).',
              cause: err,
            })
          : err,
      );
    });
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    // Ended by its timeout: done at its exit. Over a shared ssh connection its output pipes stay open in
    // the master until the remote command ends, so 'close' could come much later than the timeout.
    child.once('exit', (_code, signal) => {
      if (signal !== null) resolve({ code: null, stdout, stderr: `${stderr}${tool} was ended by ${signal} after its timeout\n` });
    });
    // A tool that exits before reading its input closes the pipe under us: EPIPE is no news then.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** The ssh_config file Strata's ssh uses instead of ~/.ssh/config, when STRATA_SSH_CONFIG names one. */
export function sshConfigFile(env: NodeJS.ProcessEnv = process.env): string | null {
  const file = env['STRATA_SSH_CONFIG'];
  return file && file.length > 0 ? file : null;
}

/** Where and how ssh connects to a host, as `ssh -G` says once ~/.ssh/config is applied. */
export interface SshOptions {
  hostname: string;
  port: number;
  user: string;
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  hashKnownHosts: boolean;
  /** 'ask', 'yes' (refuse unknown keys), 'no', 'accept-new' (or as OpenSSH spells them). */
  strictHostKeyChecking: string;
  hostKeyAlias: string | null;
  /** ssh reaches the host through a jump host or a command: ssh-keyscan could not see its key. */
  proxied: boolean;
  /** Host key algorithms in the order ssh prefers them. */
  hostKeyAlgorithms: string[];
}

/** `ssh -G` for the host libvirt will give ssh (its -p and -l from the URI). */
export async function resolveSshOptions(target: { host: string; port: number | null; user: string | null }, configFile: string | null): Promise<SshOptions> {
  const args = [...(configFile ? ['-F', configFile] : []), '-G', ...(target.port ? ['-p', String(target.port)] : []), ...(target.user ? ['-l', target.user] : []), '--', target.host];
  const r = await runOpenSsh('ssh', args);
  if (r.code !== 0) {
    throw new StrataError('unavailable', `ssh cannot read its configuration for ${target.host}: ${r.stderr.trim() || `exit code ${r.code}`}`, {
      hint: configFile ? `Check ${configFile} (STRATA_SSH_CONFIG).` : 'Check ~/.ssh/config and /etc/ssh/ssh_config.',
    });
  }
  const values = new Map<string, string[]>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    values.set(key, [...(values.get(key) ?? []), m[2]!]);
  }
  const one = (key: string): string | null => values.get(key)?.[0] ?? null;
  const list = (key: string): string[] => (one(key) ?? '').split(/\s+/).filter((f) => f.length > 0 && f !== 'none');
  const proxyJump = one('proxyjump');
  const proxyCommand = one('proxycommand');
  return {
    hostname: one('hostname') ?? target.host,
    port: Number(one('port') ?? target.port ?? 22),
    user: one('user') ?? target.user ?? '',
    userKnownHostsFiles: list('userknownhostsfile'),
    globalKnownHostsFiles: list('globalknownhostsfile'),
    hashKnownHosts: one('hashknownhosts') === 'yes',
    strictHostKeyChecking: one('stricthostkeychecking') ?? 'ask',
    hostKeyAlias: one('hostkeyalias'),
    proxied: (proxyJump !== null && proxyJump !== 'none') || (proxyCommand !== null && proxyCommand !== 'none'),
    hostKeyAlgorithms: (one('hostkeyalgorithms') ?? '').split(',').filter(Boolean),
  };
}
