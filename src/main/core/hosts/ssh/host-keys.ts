// The remote host's key, checked by Strata before libvirt starts ssh, as ssh itself would judge it:
// the keys the server offers (ssh-keyscan), the one ssh would pick (its HostKeyAlgorithms order,
// types already known first), and what the user's known_hosts files say of it (ssh-keygen -F).
// Trusting a key appends it the way ssh does when the user answers "yes": to the first
// UserKnownHostsFile, hashed when HashKnownHosts is on.
import { createHmac, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StrataError } from '../../../../shared/errors.ts';
import { runOpenSsh, type SshOptions } from './openssh.ts';

export interface HostKey {
  /** As ssh names it in known_hosts: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa… */
  type: string;
  /** The key itself, base64 as in known_hosts. */
  blob: string;
}

export interface SeenHostKey extends HostKey {
  /** As `ssh-keygen -l` prints it: "SHA256:…". */
  fingerprint: string;
  /** As `ssh-keygen -l` names it, with its size: "ED25519 (256 bits)". */
  description: string;
}

export type HostKeyVerdict =
  | { status: 'known'; knownAs: string }
  | { status: 'unknown'; knownAs: string; key: SeenHostKey; otherTypesKnown: boolean; knownHostsFile: string }
  | { status: 'changed'; knownAs: string; key: SeenHostKey; knownIn: { file: string; line: number }[]; revoked: boolean }
  /** ssh-keyscan got no key (the host is down, or only ssh itself can reach it): ssh will judge. */
  | { status: 'unseen'; knownAs: string; detail: string };

/** The name ssh looks the host up by in known_hosts. */
export function knownAsName(options: SshOptions): string {
  if (options.hostKeyAlias) return options.hostKeyAlias;
  return options.port === 22 ? options.hostname : `[${options.hostname}]:${options.port}`;
}

// Host key algorithms name signatures; known_hosts and ssh-keyscan name key types.
function keyTypeOf(algorithm: string): string | null {
  if (algorithm.includes('-cert-v01@')) return null;
  if (algorithm === 'rsa-sha2-512' || algorithm === 'rsa-sha2-256') return 'ssh-rsa';
  return algorithm;
}

function parseKeyLines(text: string): HostKey[] {
  const keys: HostKey[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 3 || fields[0]!.startsWith('#')) continue;
    keys.push({ type: fields[1]!, blob: fields[2]! });
  }
  return keys;
}

/** The keys the server offers, by ssh-keyscan (which reads no ssh_config: it gets the resolved host and port). */
export async function scanHostKeys(options: SshOptions, timeoutSeconds = 5): Promise<{ keys: HostKey[]; detail: string }> {
  const r = await runOpenSsh('ssh-keyscan', ['-T', String(timeoutSeconds), '-p', String(options.port), '--', options.hostname], {
    timeoutMs: (timeoutSeconds + 5) * 1000,
  });
  const detail = r.stderr
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .join(' ')
    .trim();
  return { keys: parseKeyLines(r.stdout), detail: detail || `no answer from ${options.hostname} port ${options.port}` };
}

interface KnownEntry extends HostKey {
  file: string;
  line: number;
  revoked: boolean;
}

/** What the known_hosts files hold for `name` (hashed lines included), by ssh-keygen -F. */
export async function knownEntries(name: string, files: readonly string[]): Promise<KnownEntry[]> {
  const entries: KnownEntry[] = [];
  for (const file of files) {
    if (!(await stat(file).catch(() => null))?.isFile()) continue;
    const r = await runOpenSsh('ssh-keygen', ['-F', name, '-f', file]);
    // Exit 1: no line for the host in this file.
    if (r.code !== 0) continue;
    let line = 0;
    for (const text of r.stdout.split('\n')) {
      const found = /^# Host .* found: line (\d+)/.exec(text);
      if (found) {
        line = Number(found[1]);
        continue;
      }
      const fields = text.trim().split(/\s+/);
      if (fields.length < 3 || fields[0]!.startsWith('#')) continue;
      const marker = fields[0]!.startsWith('@') ? fields.shift()! : null;
      // A CA's key signs host certificates; it is not this host's key.
      if (marker === '@cert-authority' || fields.length < 3) continue;
      entries.push({ type: fields[1]!, blob: fields[2]!, file, line, revoked: marker === '@revoked' });
    }
  }
  return entries;
}

/** The fingerprint of a key as `ssh-keygen -l` prints it. */
export async function fingerprint(key: HostKey): Promise<{ fingerprint: string; description: string }> {
  const r = await runOpenSsh('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], { input: `strata ${key.type} ${key.blob}\n` });
  // "256 SHA256:DdFs… strata (ED25519)"
  const m = /^(\d+)\s+(SHA256:\S+)\s.*\(([^)]+)\)\s*$/m.exec(r.stdout);
  if (r.code !== 0 || !m) throw new StrataError('internal', `ssh-keygen could not read the host's ${key.type} key: ${r.stderr.trim() || r.stdout.trim()}`);
  return { fingerprint: m[2]!, description: `${m[3]} (${m[1]} bits)` };
}

/**
 * Judges the host's key as ssh will: ssh prefers the algorithms of key types already known for
 * the host, so a known key of another type is still the one checked when the server offers it.
 */
export async function checkHostKey(options: SshOptions): Promise<HostKeyVerdict> {
  const knownAs = knownAsName(options);
  const { keys, detail } = await scanHostKeys(options);
  if (keys.length === 0) return { status: 'unseen', knownAs, detail };
  const known = await knownEntries(knownAs, [...options.userKnownHostsFiles, ...options.globalKnownHostsFiles]);
  const revoked = known.filter((k) => k.revoked);
  const trusted = known.filter((k) => !k.revoked);
  const offered = (algorithms: readonly string[]) =>
    algorithms.map(keyTypeOf).flatMap((type) => keys.filter((k) => k.type === type))[0] ?? null;
  const order = options.hostKeyAlgorithms.length > 0 ? options.hostKeyAlgorithms : keys.map((k) => k.type);
  const knownTypes = new Set(trusted.map((k) => k.type));
  const chosen = offered(order.filter((a) => knownTypes.has(keyTypeOf(a) ?? ''))) ?? offered(order) ?? keys[0]!;
  const seen = async (): Promise<SeenHostKey> => ({ ...chosen, ...(await fingerprint(chosen)) });
  const isRevoked = revoked.some((k) => k.type === chosen.type && k.blob === chosen.blob);
  if (isRevoked) {
    return { status: 'changed', knownAs, key: await seen(), knownIn: revoked.map(({ file, line }) => ({ file, line })), revoked: true };
  }
  const sameType = trusted.filter((k) => k.type === chosen.type);
  if (sameType.some((k) => k.blob === chosen.blob)) return { status: 'known', knownAs };
  if (sameType.length > 0) {
    return { status: 'changed', knownAs, key: await seen(), knownIn: sameType.map(({ file, line }) => ({ file, line })), revoked: false };
  }
  const file = options.userKnownHostsFiles[0];
  if (!file) {
    throw new StrataError('unavailable', `ssh keeps no known_hosts file of the user (UserKnownHostsFile is none), so ${knownAs}'s key cannot be trusted`, {
      hint: 'Set UserKnownHostsFile in ~/.ssh/config, or add the key to the global known_hosts file.',
    });
  }
  return { status: 'unknown', knownAs, key: await seen(), otherTypesKnown: trusted.length > 0, knownHostsFile: file };
}

/** known_hosts' hashed form of a host name (HashKnownHosts): |1|salt|HMAC-SHA1(salt, name), both base64. */
export function hashedHostName(name: string, salt: Buffer = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

/** Adds the key to the known_hosts file as ssh does on "yes", making ~/.ssh (0700) if needed. */
export async function trustHostKey(file: string, knownAs: string, key: HostKey, hash: boolean): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const before = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const separator = before.length > 0 && !before.endsWith('\n') ? '\n' : '';
  await appendFile(file, `${separator}${hash ? hashedHostName(knownAs) : knownAs} ${key.type} ${key.blob}\n`, { mode: 0o600 });
}
