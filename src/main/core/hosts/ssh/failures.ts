// What a failed qemu+ssh open means, from ssh's and libvirt's words (libvirt passes ssh's stderr
// on: "Cannot recv data: <ssh's words>: Connection reset by peer") and from what was asked during
// the attempt. Failures only the user can fix (keys, credentials, the remote's setup) become
// NeedsUserError and stop the backoff; network failures stay errors that back off and retry.
import { StrataError } from '../../../../shared/errors.ts';
import { accessProblem, NeedsUserError } from '../needs-user.ts';

/** What happened during the attempt, besides the error. */
export interface AttemptFacts {
  /** user@host:port, as the messages name the host. */
  target: string;
  host: string;
  port: number;
  user: string;
  /** The name the host's key is known by in known_hosts. */
  knownAs: string;
  knownHostsFile: string | null;
  /** Questions ssh asked, by kind, and how they went. */
  asked: { kind: 'passphrase' | 'password' | 'host-key'; times: number; declined: boolean }[];
  /** The URI the user gave, for a fix that suggests another. */
  uri: string;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** ssh's own words inside libvirt's message, without libvirt's wrapping. */
export function sshWords(message: string): string {
  return message
    .replace(/^(Cannot recv data|End of file while reading data|Cannot write data):\s*/i, '')
    .replace(/:\s*(Connection reset by peer|Input\/output error|Broken pipe)\s*$/i, '')
    .trim();
}

/** The NeedsUserError or network error this failure is; other failures come back as they were. */
export function classifySshFailure(err: unknown, facts: AttemptFacts): unknown {
  const message = messageOf(err);
  const words = sshWords(message);
  const removeLine = `ssh-keygen -R '${facts.knownAs}'${facts.knownHostsFile ? ` -f '${facts.knownHostsFile}'` : ''}`;

  // The user declined a password, which ends ssh: whatever libvirt then says, that is why.
  if (facts.asked.some((a) => a.kind === 'password' && a.declined)) {
    return new NeedsUserError(
      `${facts.target} asked for a password, and none was given`,
      `Retry and type ${facts.user || 'the user'}'s password, or install your public key there (ssh-copy-id) so no password is asked.`,
      accessProblem('ssh-auth-failed', words, [{ label: `Install your public key for ${facts.user || 'the user'} on ${facts.host}`, command: `ssh-copy-id ${facts.user ? `${facts.user}@` : ''}${facts.host}`, uri: null }]),
      { cause: err },
    );
  }
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/i.test(message)) {
    return new NeedsUserError(`${facts.host}'s SSH host key has changed since it was trusted: ssh refused to connect`, hostKeyChangedHint(facts.knownAs), accessProblem('host-key-changed', words, hostKeyChangedFixes(removeLine)), { cause: err });
  }
  if (/Host key verification failed/i.test(message)) {
    return new NeedsUserError(
      `${facts.host}'s SSH host key is not trusted yet, and it was not accepted`,
      'Retry to see the key\'s fingerprint and trust it, or trust it from a terminal with `ssh` once.',
      accessProblem('host-key-unknown', words, [{ label: "Connect once from a terminal, compare the fingerprint ssh shows with the host's, and answer yes", command: `ssh ${facts.port !== 22 ? `-p ${facts.port} ` : ''}${facts.user ? `${facts.user}@` : ''}${facts.host} true`, uri: null }]),
      { cause: err },
    );
  }
  if (/Permission denied \(|Too many authentication failures|no more authentication methods|Authentication failed/i.test(message)) {
    const passphrase = facts.asked.find((a) => a.kind === 'passphrase');
    const password = facts.asked.find((a) => a.kind === 'password');
    if (passphrase?.declined && !password) {
      return new NeedsUserError(
        `${facts.target} needs the passphrase of an SSH key, and none was given`,
        'Retry and type the key\'s passphrase, or add the key to your SSH agent (ssh-add) so no passphrase is asked.',
        accessProblem('passphrase-needed', words, [{ label: 'Add the key to your SSH agent, which then answers for it', command: 'ssh-add', uri: null }]),
        { cause: err },
      );
    }
    const refused =
      passphrase && passphrase.times > 1 && !passphrase.declined
        ? ' (the passphrase given was wrong)'
        : password && password.times > 1 && !password.declined
          ? ' (the password given was wrong)'
          : '';
    return new NeedsUserError(
      `${facts.target} refused the SSH login${refused}: ${words}`,
      `Check the user name, that your public key is in ${facts.user || 'the user'}'s ~/.ssh/authorized_keys on ${facts.host} (ssh-copy-id), or the password; then Retry.`,
      accessProblem('ssh-auth-failed', words, [{ label: `Install your public key for ${facts.user || 'the user'} on ${facts.host}`, command: `ssh-copy-id ${facts.user ? `${facts.user}@` : ''}${facts.host}`, uri: null }]),
      { cause: err },
    );
  }
  if (/(virt-ssh-helper|\bnc)\b[^:]*: (not found|command not found)|sh: \d+: \S*nc: not found/i.test(message)) {
    return new NeedsUserError(
      `${facts.host} has no way to reach its libvirt over SSH: neither virt-ssh-helper nor nc was found there`,
      `Install libvirt on ${facts.host} (virt-ssh-helper comes with libvirt 6.8 and later: Debian libvirt-clients or libvirt-daemon, Fedora libvirt-client), or netcat-openbsd; then Retry.`,
      accessProblem('ssh-remote-no-libvirt', words, [
        { label: `On ${facts.host}, install libvirt's client tools, which bring virt-ssh-helper (Debian)`, command: 'sudo apt-get install libvirt-clients', uri: null },
        { label: `On ${facts.host}, install netcat with UNIX socket support (Debian)`, command: 'sudo apt-get install netcat-openbsd', uri: null },
      ]),
      { cause: err },
    );
  }
  if (/polkit|system bus connection|authentication unavailable|access denied|not authorized|Failed to connect socket to '[^']*': Permission denied/i.test(message)) {
    const who = facts.user || 'the remote user';
    return new NeedsUserError(
      `libvirtd on ${facts.host} refused ${who}: ${words}`,
      `On ${facts.host}, add ${who} to the libvirt group (sudo usermod -aG libvirt ${facts.user || 'USER'}, effective at its next login), or connect as a user who may use libvirt there.`,
      accessProblem('ssh-remote-refused', words, [
        { label: `On ${facts.host}, add ${who} to the libvirt group`, command: `sudo usermod -aG libvirt ${facts.user || 'USER'}`, uri: null },
      ]),
      { cause: err },
    );
  }
  if (/Could not resolve hostname|Connection refused|Connection timed out|No route to host|Network is unreachable|Connection closed by|connect to host|kex_exchange_identification/i.test(message)) {
    return new StrataError('unavailable', words, {
      hint: `ssh could not reach ${facts.host}: check the host name, the network and that sshd runs there. Strata retries by itself.`,
      cause: err,
    });
  }
  return err;
}

export function hostKeyChangedHint(knownAs: string): string {
  return (
    `The key ${knownAs} shows now is not the one your known_hosts file holds for it. Someone may be ` +
    'intercepting the connection (a man-in-the-middle attack), or the host was reinstalled or its ' +
    "SSH keys replaced. Ask the host's administrator for its key's fingerprint; only if it matches, " +
    'remove the old line and connect again.'
  );
}

export function hostKeyChangedFixes(removeLine: string): { label: string; command: string; uri: null }[] {
  return [{ label: "After checking the new key's fingerprint with the host's administrator, remove the old key from known_hosts, then Retry", command: removeLine, uri: null }];
}

/**
 * The URI over OpenSSH for a URI over libvirt's built-in SSH clients (qemu+libssh://, +libssh2://),
 * without the parameters only those clients read; null for any other URI.
 */
export function openSshUri(uri: string): string | null {
  const m = /^([a-z0-9]+)\+libssh2?:\/\/([^?#]*)(?:\?([^#]*))?(#.*)?$/i.exec(uri);
  if (!m) return null;
  // The user's own spelling of the other parameters is kept, as libvirt reads them either way.
  const kept = (m[3] ?? '').split('&').filter((p) => p !== '' && !['known_hosts', 'known_hosts_verify', 'sshauth'].includes(p.split('=')[0]!));
  return `${m[1]}+ssh://${m[2]}${kept.length > 0 ? `?${kept.join('&')}` : ''}${m[4] ?? ''}`;
}

/**
 * libvirt's built-in SSH clients ask for a host key's trust, a passphrase or a password through
 * the auth callbacks of virConnectOpenAuth, which Strata does not give: such a failure names the
 * qemu+ssh:// URI that works (through OpenSSH, whose questions the window asks) and stops the
 * retries. Other failures come back as they were.
 */
export function classifyLibsshFailure(err: unknown, uri: string): unknown {
  const message = messageOf(err);
  const instead = openSshUri(uri);
  const m = /No user interaction callback provided: (.*)$/i.exec(message);
  if (!instead || !m) return err;
  const scheme = /^[a-z0-9]+\+libssh2?/i.exec(uri)![0];
  const asked = m[1]!.trim();
  const kind = /host key/i.test(asked) ? 'host-key-unknown' : /passphrase/i.test(asked) ? 'passphrase-needed' : 'ssh-auth-failed';
  return new NeedsUserError(
    `${scheme}:// needs an answer Strata cannot give over that transport (libvirt: ${asked})`,
    `libvirt's own SSH client asks through callbacks Strata does not answer. Use ${instead}: it goes through OpenSSH, whose questions (host key, passphrase, password) Strata asks in the window, with your ~/.ssh/config and agent.`,
    accessProblem(kind, message, [{ label: 'Add the host over OpenSSH instead (the same host, user and port)', command: null, uri: instead }]),
    { cause: err },
  );
}
