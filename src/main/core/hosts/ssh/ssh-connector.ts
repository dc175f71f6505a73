// Opens qemu+ssh hosts the way a user at a terminal would, but through the window: the host's key
// is checked before libvirt starts ssh (an unknown key waits for the user's trust, shown by its
// fingerprint; a changed one is refused with what it may mean), and whatever ssh asks during the
// login (a key's passphrase, a password) becomes a `host.prompt` the window answers. Answers go
// straight to ssh through the attempt's askpass and are never stored or logged. Other URIs open
// as they are; over libvirt's own SSH clients (qemu+libssh://), a question only libvirt's auth
// callbacks could answer names the qemu+ssh:// URI to use instead.
import { randomUUID } from 'node:crypto';
import type { HostPrompt, HostPromptEnd, HostPromptKind } from '../../../../shared/ssh.ts';
import { StrataError } from '../../../../shared/errors.ts';
import { LibvirtConnection } from '../../../libvirt/connection.ts';
import { log } from '../../../log/logger.ts';
import type { EventHub } from '../../api/event-hub.ts';
import { accessProblem, NeedsUserError } from '../needs-user.ts';
import { userAgentSocket } from './agent.ts';
import { AskpassChannel, AskpassRoot, type AskpassQuestion } from './askpass.ts';
import { classifyLibsshFailure, classifySshFailure, hostKeyChangedFixes, hostKeyChangedHint, type AttemptFacts } from './failures.ts';
import { checkHostKey, knownAsName, trustHostKey, type HostKeyVerdict } from './host-keys.ts';
import { resolveSshOptions, sshConfigFile, type SshOptions } from './openssh.ts';
import { controlPathFor, openMaster, RemoteShell, sshArgsOf } from './remote-shell.ts';

/** One connection attempt of a host. */
export interface SshAttempt {
  hostId: string;
  uri: string;
  readOnly: boolean;
  /** Tries again at once (after the user trusted the host's key). */
  retry(): void;
}

export interface SshTarget {
  host: string;
  port: number | null;
  user: string | null;
  /** libvirt's no_verify=1: the user asked ssh not to check the host's key. */
  noVerify: boolean;
}

/** The ssh destination of a URI over libvirt's ssh transport (qemu+ssh://…); null for any other. */
export function sshTarget(uri: string): SshTarget | null {
  if (!/^[a-z0-9]+\+ssh:\/\//i.test(uri)) return null;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return null;
  }
  return {
    // libvirt's remote driver connects to localhost when the URI names no host.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost',
    port: url.port ? Number(url.port) : null,
    user: url.username ? decodeURIComponent(url.username) : null,
    noVerify: url.searchParams.get('no_verify') === '1',
  };
}

/** The URI libvirt gets: the user's, with the attempt's ssh (libvirt's `command` parameter). */
export function withSshCommand(uri: string, command: string): string {
  const hash = uri.indexOf('#');
  const base = hash >= 0 ? uri.slice(0, hash) : uri;
  return `${base}${base.includes('?') ? '&' : '?'}command=${encodeURIComponent(command)}${hash >= 0 ? uri.slice(hash) : ''}`;
}

function promptKind(text: string): HostPromptKind {
  if (/authenticity of host|continue connecting/i.test(text)) return 'host-key';
  if (/passphrase/i.test(text)) return 'passphrase';
  return 'password';
}

interface Pending {
  prompt: HostPrompt;
  /** Delivers the answer (null: declined); false when nobody waits for it any more. */
  deliver(answer: string | null): Promise<boolean>;
}

export class SshConnector {
  readonly #hub: EventHub;
  readonly #root = new AskpassRoot();
  readonly #pending = new Map<string, Pending>();
  /** Hosts being stopped or removed: whatever ssh still asks for them is declined at once. */
  readonly #stopped = new Set<string>();
  /** Each qemu+ssh host's commands for its files (backups): one master connection each. */
  readonly #shells = new Map<string, Promise<RemoteShell>>();

  constructor(hub: EventHub) {
    this.#hub = hub;
  }

  /** Opens the host's connection; an ssh failure that needs the user is thrown as a NeedsUserError. */
  async open(attempt: SshAttempt): Promise<LibvirtConnection> {
    const target = sshTarget(attempt.uri);
    if (!target) {
      return LibvirtConnection.open(attempt.uri, { readOnly: attempt.readOnly }).catch((err: unknown) => {
        throw classifyLibsshFailure(err, attempt.uri);
      });
    }
    // A new attempt asks anew: questions left from an earlier one have no one to answer them.
    this.forget(attempt.hostId);
    const configFile = sshConfigFile();
    const options = await resolveSshOptions(target, configFile);
    const facts: AttemptFacts = {
      target: `${options.user ? `${options.user}@` : ''}${options.hostname}${options.port !== 22 ? `:${options.port}` : ''}`,
      host: options.hostname,
      port: options.port,
      user: options.user,
      knownAs: knownAsName(options),
      knownHostsFile: options.userKnownHostsFiles[0] ?? null,
      asked: [],
      uri: attempt.uri,
    };
    // known_hosts is not watched for a change: trusting a key writes it and tries again at once,
    // and a key removed in a terminal only makes the host unknown, which Retry then shows.
    // Through a jump host or a proxy command, ssh-keyscan cannot see the key: ssh itself asks
    // about an unknown one then, through the askpass, as a host-key prompt.
    if (!target.noVerify && !options.proxied && !/^(no|off|false)$/i.test(options.strictHostKeyChecking)) {
      await this.#checkHostKey(attempt, options, await checkHostKey(options));
    }
    let channel: AskpassChannel | null = null;
    const asked: string[] = [];
    channel = await AskpassChannel.open(
      this.#root,
      configFile,
      await userAgentSocket(),
      (q) => {
        if (channel) this.#ask(attempt.hostId, channel, q, asked, facts);
      },
      controlPathFor(await this.#root.dir, attempt.hostId, attempt.uri),
    );
    try {
      return await LibvirtConnection.open(withSshCommand(attempt.uri, channel.sshCommand), { readOnly: attempt.readOnly });
    } catch (err) {
      throw classifySshFailure(err, facts);
    } finally {
      for (const [id, p] of this.#pending) if (p.prompt.hostId === attempt.hostId) this.#close(id, 'gone');
      await channel.close();
    }
  }

  /**
   * Runs commands on a qemu+ssh host (its backup sets' files) through the master connection of the
   * libvirt connection's ssh (ControlMaster auto, at the same path), so they ask nothing; when that
   * is gone, a master of their own, asking the user through host.prompt as the connection does.
   */
  shell(hostId: string, uri: string): Promise<RemoteShell> {
    let shell = this.#shells.get(hostId);
    if (!shell) {
      shell = this.#openShell(hostId, uri);
      this.#shells.set(hostId, shell);
      shell.catch(() => {
        if (this.#shells.get(hostId) === shell) this.#shells.delete(hostId);
      });
    }
    return shell;
  }

  async #openShell(hostId: string, uri: string): Promise<RemoteShell> {
    const target = sshTarget(uri);
    if (!target) throw new StrataError('conflict', `${uri} is not reached over SSH: Strata reaches a remote host's files only through ssh (qemu+ssh://)`);
    const configFile = sshConfigFile();
    const options = await resolveSshOptions(target, configFile);
    const args = sshArgsOf(uri, target);
    const dir = await this.#root.dir;
    const controlPath = controlPathFor(dir, hostId, uri);
    if (controlPath === null) {
      throw new StrataError('unavailable', `Strata's runtime folder ${dir} has too long a path for ssh's connection socket`, {
        hint: 'Start Strata with XDG_RUNTIME_DIR (or TMPDIR) set to a shorter folder.',
      });
    }
    const where = `${options.user ? `${options.user}@` : ''}${target.host}${target.port !== null ? `:${target.port}` : ''}`;
    const open = async (): Promise<void> => {
      const facts: AttemptFacts = { target: where, host: options.hostname, port: options.port, user: options.user, knownAs: knownAsName(options), knownHostsFile: options.userKnownHostsFiles[0] ?? null, asked: [], uri };
      const asked: string[] = [];
      let channel: AskpassChannel | null = null;
      channel = await AskpassChannel.open(this.#root, configFile, await userAgentSocket(), (q) => {
        if (channel) this.#ask(hostId, channel, q, asked, facts);
      });
      try {
        // The user may take a while to answer a password prompt.
        await openMaster(channel.sshCommand, args, controlPath, target.host, 300_000);
        log.info('opened an ssh connection for the host\'s files', { host: hostId });
      } finally {
        for (const [id, p] of this.#pending) if (p.prompt.hostId === hostId) this.#close(id, 'gone');
        await channel.close();
      }
    };
    const shell = new RemoteShell(where, target.host, args, configFile, controlPath, open);
    // The libvirt connection's ssh serves these commands while it runs; else a master of their own.
    if (!(await shell.alive())) await shell.open();
    return shell;
  }

  async #closeShell(hostId: string): Promise<void> {
    const shell = this.#shells.get(hostId);
    this.#shells.delete(hostId);
    await (await shell?.catch(() => null))?.close();
  }

  async #checkHostKey(attempt: SshAttempt, options: SshOptions, verdict: HostKeyVerdict): Promise<void> {
    if (verdict.status === 'known') return;
    if (verdict.status === 'unseen') {
      // Unreachable for ssh-keyscan is not yet a verdict: ssh says what is wrong, or asks itself.
      log.debug('ssh-keyscan saw no host key; ssh will judge it', { host: attempt.hostId, detail: verdict.detail });
      return;
    }
    const { key, knownAs } = verdict;
    const shown = `${key.description} key ${key.fingerprint}`;
    if (verdict.status === 'changed') {
      const where = verdict.knownIn.map((k) => `${k.file} line ${k.line}`).join(', ');
      const removeLine = `ssh-keygen -R '${knownAs}' -f '${verdict.knownIn[0]?.file ?? options.userKnownHostsFiles[0] ?? '~/.ssh/known_hosts'}'`;
      throw new NeedsUserError(
        verdict.revoked
          ? `${knownAs} offers a host key that known_hosts marks as revoked (${shown}): Strata will not connect`
          : `WARNING: ${knownAs}'s SSH host key has changed (it now shows the ${shown}; the key trusted before is in ${where}): Strata will not connect`,
        hostKeyChangedHint(knownAs),
        accessProblem('host-key-changed', `${knownAs} now shows the ${shown}; known_hosts holds another ${key.type} key for it (${where}).`, hostKeyChangedFixes(removeLine)),
      );
    }
    if (/^accept-new$/i.test(options.strictHostKeyChecking)) {
      // The user's ssh is set to take new keys without asking; Strata does as ssh would.
      await trustHostKey(verdict.knownHostsFile, knownAs, key, options.hashKnownHosts);
      log.info('added a new host key to known_hosts, as StrictHostKeyChecking accept-new says', { host: attempt.hostId, knownAs, fingerprint: key.fingerprint });
      return;
    }
    const text =
      `Strata has not seen ${knownAs} before and cannot tell that it is the host you mean. Its ${shown}.` +
      (verdict.otherTypesKnown ? ' (Keys of other types are known for this host, but not this one.)' : '') +
      ' Trust it only if this fingerprint is the one the host has.';
    this.#open(attempt.hostId, { kind: 'host-key', text, fingerprint: key.fingerprint, keyType: key.description, knownAs, knownHostsFile: verdict.knownHostsFile, refused: false }, async (answer) => {
      if (answer === null) return true;
      await trustHostKey(verdict.knownHostsFile, knownAs, key, options.hashKnownHosts);
      log.info('the user trusted a host key; it is in known_hosts now', { host: attempt.hostId, knownAs, fingerprint: key.fingerprint, file: verdict.knownHostsFile });
      attempt.retry();
      return true;
    });
    const fileName = { 'ssh-ed25519': 'ed25519', 'ssh-rsa': 'rsa' }[key.type] ?? (key.type.startsWith('ecdsa') ? 'ecdsa' : null);
    throw new NeedsUserError(
      `${knownAs}'s SSH host key is not known yet: its ${shown}`,
      "Compare the fingerprint with the host's own, then trust the key; Strata adds it to your known_hosts as ssh would.",
      accessProblem(
        'host-key-unknown',
        text,
        fileName ? [{ label: `On the host, print its ${key.description.split(' ')[0]} key's fingerprint to compare`, command: `ssh-keygen -lf /etc/ssh/ssh_host_${fileName}_key.pub`, uri: null }] : [],
      ),
    );
  }

  #ask(hostId: string, channel: AskpassChannel, q: AskpassQuestion, asked: string[], facts: AttemptFacts): void {
    if (this.#stopped.has(hostId)) {
      void channel.answer(q.id, null);
      return;
    }
    const kind = promptKind(q.text);
    const refused = asked.includes(q.text);
    asked.push(q.text);
    const fact = facts.asked.find((a) => a.kind === kind);
    if (fact) fact.times += 1;
    else facts.asked.push({ kind, times: 1, declined: false });
    const fingerprint = /(SHA256:[A-Za-z0-9+/=]+)/.exec(q.text)?.[1] ?? null;
    const keyType = /(\S+) key fingerprint is/.exec(q.text)?.[1] ?? null;
    this.#open(hostId, { kind, text: q.text.trim(), fingerprint, keyType, knownAs: null, knownHostsFile: null, refused }, (answer) => {
      if (answer === null) {
        const f = facts.asked.find((a) => a.kind === kind);
        if (f) f.declined = true;
      }
      // ssh asks "(yes/no/[fingerprint])" about a host key; trusting it is its "yes". A declined
      // password ends the login: ssh would send an empty one and ask again.
      return channel.answer(q.id, kind === 'host-key' && answer !== null ? 'yes' : answer, { endLogin: kind === 'password' });
    });
  }

  #open(hostId: string, question: Omit<HostPrompt, 'hostId' | 'promptId'>, deliver: Pending['deliver']): void {
    const prompt: HostPrompt = { hostId, promptId: randomUUID(), ...question };
    this.#pending.set(prompt.promptId, { prompt, deliver });
    log.info('a host asks the user', { host: hostId, kind: prompt.kind, prompt: prompt.promptId });
    this.#hub.emit('host.prompt', prompt);
  }

  #close(promptId: string, end: HostPromptEnd): Pending | null {
    const pending = this.#pending.get(promptId);
    if (!pending) return null;
    this.#pending.delete(promptId);
    this.#hub.emit('host.promptClosed', { hostId: pending.prompt.hostId, promptId, end });
    if (end === 'gone') void pending.deliver(null).catch(() => false);
    return pending;
  }

  prompts(): HostPrompt[] {
    return [...this.#pending.values()].map((p) => p.prompt);
  }

  /** Hands the user's answer on. The answer itself is never logged or kept. */
  async answer(hostId: string, promptId: string, answer: string | null): Promise<{ delivered: boolean }> {
    const pending = this.#pending.get(promptId);
    if (!pending || pending.prompt.hostId !== hostId) {
      throw new StrataError('not-found', 'that question is no longer asked: it was answered, or its connection attempt ended', {
        hint: 'The host shows what happened; Retry asks again.',
      });
    }
    if (pending.prompt.kind === 'host-key' && answer !== null && answer !== 'trust') {
      throw new StrataError('invalid-request', "a host key is answered with 'trust', or declined with cancel: true");
    }
    this.#pending.delete(promptId);
    this.#hub.emit('host.promptClosed', { hostId, promptId, end: answer === null ? 'cancelled' : 'answered' });
    log.info(answer === null ? 'the user declined a question' : 'the user answered a question', { host: hostId, kind: pending.prompt.kind, prompt: promptId });
    return { delivered: await pending.deliver(answer) };
  }

  /** Drops the host's questions (it was removed, or a new attempt starts). */
  forget(hostId: string): void {
    for (const [id, p] of this.#pending) if (p.prompt.hostId === hostId) this.#close(id, 'gone');
  }

  /**
   * The host stops: its questions are declined, and so is any it asks from now on, so that an
   * attempt waiting in ssh for an answer ends and the host's stop does not wait for the user.
   */
  stop(hostId: string): void {
    this.#stopped.add(hostId);
    this.forget(hostId);
    void this.#closeShell(hostId);
  }

  async close(): Promise<void> {
    for (const id of [...this.#pending.keys()]) this.#close(id, 'gone');
    for (const hostId of [...this.#shells.keys()]) await this.#closeShell(hostId);
    await this.#root.remove();
  }
}
