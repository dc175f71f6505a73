// The life of one host's libvirt connection: connecting, connected, lost (with libvirt's
// reason), retrying with backoff, closed; or waiting for the user (needs-user) after a failure
// retrying cannot fix, until Retry or a watched path changes. Every (re)connection registers the
// events again, since registrations die with the connection.
import type { AccessProblem } from '../../../shared/access.ts';
import type { HostState } from '../../../shared/model.ts';
import { StrataError } from '../../../shared/errors.ts';
import { LibvirtConnection } from '../../libvirt/connection.ts';
import { connectionHint, libvirtCode, toStrataError } from '../../libvirt/errors.ts';
import type { BlockJobNotice, CloseReason } from '../../libvirt/types.ts';
import { log } from '../../log/logger.ts';
import { needsUser } from './access-classifiers.ts';
import { backoffMs, watchTriggeredTries } from './backoff.ts';
import type { NeedsUserError } from './needs-user.ts';
import { pathStamp, watchPath } from './path-watch.ts';

export interface HostConnectionDeps {
  uri: string;
  readOnly: boolean;
  keepAliveIntervalSeconds: number;
  state(state: HostState, reason: string | null): void;
  blockJob(notice: BlockJobNotice): void;
  lifecycle(domain: string): void;
  /** After each (re)connection, before the host counts as connected to callers. */
  connected(conn: LibvirtConnection): Promise<void>;
  /** Opens the connection instead of LibvirtConnection.open (qemu+ssh: host keys and passphrases asked first). */
  open?(): Promise<LibvirtConnection>;
}

const closeWords: Record<CloseReason, string> = {
  error: 'the connection to libvirtd failed',
  eof: 'libvirtd closed the connection (it may be restarting)',
  keepalive: 'libvirtd stopped answering keepalive probes',
  client: 'the connection was closed',
  unknown: 'the connection was lost',
};

export class HostConnection {
  readonly #deps: HostConnectionDeps;
  #conn: LibvirtConnection | null = null;
  #state: HostState = 'closed';
  #reason: string | null = null;
  #hint: string | null = null;
  #retryAt: number | null = null;
  #access: AccessProblem | null = null;
  #attempt = 0;
  #everConnected = false;
  /** Tries left, after a watched path changed, before a failure needing the user waits again. */
  #graceTries = 0;
  #unwatch: (() => void)[] = [];
  #retryTimer: NodeJS.Timeout | null = null;
  #stopped = true;
  #connecting: Promise<void> | null = null;

  constructor(deps: HostConnectionDeps) {
    this.#deps = deps;
  }

  get state(): HostState {
    return this.#state;
  }

  get reason(): string | null {
    return this.#reason;
  }

  get hint(): string | null {
    return this.#hint;
  }

  get retryAt(): number | null {
    return this.#retryAt;
  }

  /** In state 'needs-user': what the user must do; else null. */
  get access(): AccessProblem | null {
    return this.#access;
  }

  /** The open connection, or null while there is none. */
  get current(): LibvirtConnection | null {
    return this.#state === 'connected' ? this.#conn : null;
  }

  /** Connects, and keeps reconnecting after losses until stop(). Resolves after the first try. */
  start(): Promise<void> {
    this.#stopped = false;
    return this.#connect();
  }

  /**
   * Tries at once: after a failure that needed the user (who says it is fixed now), or instead of
   * waiting for the backoff. Resolves after the attempt.
   */
  async retryNow(): Promise<void> {
    if (this.#stopped) return;
    if (this.#connecting) return this.#connecting;
    if (this.#state === 'connected') return;
    this.#cancelWaits();
    return this.#connect();
  }

  #cancelWaits(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    for (const unwatch of this.#unwatch.splice(0)) unwatch();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelWaits();
    // A connection attempt that fails now has already said why (its state and the log).
    await this.#connecting?.catch(() => undefined);
    const conn = this.#conn;
    this.#conn = null;
    this.#set('closed', null);
    if (conn) await this.#closeQuietly(conn, 'stopping');
  }

  #set(state: HostState, reason: string | null, hint: string | null = null, retryAt: number | null = null, access: AccessProblem | null = null): void {
    if (this.#state === state && this.#reason === reason && this.#retryAt === retryAt && this.#access?.kind === access?.kind) return;
    this.#state = state;
    this.#reason = reason;
    this.#hint = hint;
    this.#retryAt = retryAt;
    this.#access = access;
    const level = state === 'lost' || state === 'retrying' || state === 'needs-user' ? 'warn' : 'info';
    log[level](`host ${state}`, { uri: this.#deps.uri, ...(reason ? { reason } : {}), ...(access ? { access: access.kind } : {}) });
    this.#deps.state(state, reason);
  }

  #connect(): Promise<void> {
    this.#connecting ??= this.#tryConnect().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  async #tryConnect(): Promise<void> {
    this.#set(this.#attempt === 0 ? 'connecting' : 'retrying', this.#reason, this.#hint, null, this.#access);
    let conn: LibvirtConnection | null = null;
    try {
      conn = await (this.#deps.open ? this.#deps.open() : LibvirtConnection.open(this.#deps.uri, { readOnly: this.#deps.readOnly }));
      if (this.#deps.keepAliveIntervalSeconds > 0) await this.#enableKeepAlive(conn);
      const opened = conn;
      await conn.onClose((reason) => this.#lost(opened, closeWords[reason]));
      await conn.onBlockJob((n) => this.#deps.blockJob(n));
      await conn.onLifecycle((domain) => this.#deps.lifecycle(domain));
      if (this.#stopped) {
        await conn.close();
        return;
      }
      this.#conn = conn;
      this.#attempt = 0;
      this.#graceTries = 0;
      this.#everConnected = true;
      this.#set('connected', null);
      await this.#deps.connected(conn);
    } catch (err) {
      if (this.#conn === conn) this.#conn = null;
      const stamps = new Map<string, string | null>();
      const need = conn ? null : needsUser(err, { uri: this.#deps.uri, afterLoss: this.#everConnected });
      // Stamped at once, so a socket made while the attempt is being closed still counts as a change.
      for (const path of need?.problem.watching ?? []) stamps.set(path, pathStamp(path));
      if (conn) await this.#closeQuietly(conn, 'a failed connection attempt');
      if (need && this.#graceTries > 0) {
        // A socket just made may not accept yet (bound, not listening): a few quick tries first.
        this.#graceTries -= 1;
        this.#retry(need.message, need.hint ?? connectionHint(err));
      } else if (need) {
        this.#waitForUser(need, stamps);
      } else {
        this.#retry(`cannot connect to ${this.#deps.uri}: ${toStrataError(err).message}`, (err instanceof StrataError && err.hint) || connectionHint(err));
      }
    }
  }

  // In-process drivers (test:///, some local ones) have no daemon to probe and say so.
  async #enableKeepAlive(conn: LibvirtConnection): Promise<void> {
    try {
      await conn.setKeepAlive(this.#deps.keepAliveIntervalSeconds, 3);
    } catch (err) {
      if (libvirtCode(err) !== 'VIR_ERR_NO_SUPPORT') throw err;
    }
  }

  #lost(conn: LibvirtConnection, reason: string): void {
    if (this.#conn !== conn) return;
    this.#conn = null;
    void this.#closeQuietly(conn, 'a lost connection');
    const hint = 'Strata reconnects by itself and follows the jobs again: they go on in QEMU meanwhile.';
    this.#set('lost', reason, hint);
    this.#retry(reason, hint);
  }

  // Closing what is already broken fails often (the daemon is gone); nothing is left to release
  // on Strata's side either way, so the failure is only worth a debug line.
  async #closeQuietly(conn: LibvirtConnection, after: string): Promise<void> {
    try {
      await conn.close();
    } catch (err) {
      log.debug(`closing the connection after ${after} failed; nothing is left open on Strata's side`, { uri: this.#deps.uri, err });
    }
  }

  #waitForUser(need: NeedsUserError, stamps: ReadonlyMap<string, string | null>): void {
    if (this.#stopped) return;
    this.#attempt = 0;
    this.#set('needs-user', need.message, need.hint, null, need.problem);
    for (const [path, since] of stamps) {
      this.#unwatch.push(
        watchPath(path, since, () => {
          log.info('a path the host waited for changed: trying again', { uri: this.#deps.uri, path });
          this.#graceTries = watchTriggeredTries;
          void this.retryNow();
        }),
      );
    }
  }

  #retry(reason: string, hint: string): void {
    if (this.#stopped) return;
    const delay = backoffMs(this.#attempt++);
    this.#set('retrying', reason, hint, Date.now() + delay);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#connect();
    }, delay);
  }
}
