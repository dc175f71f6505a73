// The life of one host's libvirt connection: connecting, connected, lost (with libvirt's
// reason), retrying with backoff, closed. Every (re)connection registers the events again, since
// registrations die with the connection.
import type { HostState } from '../../../shared/model.ts';
import { LibvirtConnection } from '../../libvirt/connection.ts';
import { connectionHint, libvirtCode, toStrataError } from '../../libvirt/errors.ts';
import type { BlockJobNotice, CloseReason } from '../../libvirt/types.ts';
import { log } from '../../log/logger.ts';
import { backoffMs } from './backoff.ts';

export interface HostConnectionDeps {
  uri: string;
  readOnly: boolean;
  keepAliveIntervalSeconds: number;
  state(state: HostState, reason: string | null): void;
  blockJob(notice: BlockJobNotice): void;
  lifecycle(domain: string): void;
  /** After each (re)connection, before the host counts as connected to callers. */
  connected(conn: LibvirtConnection): Promise<void>;
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
  #attempt = 0;
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

  /** The open connection, or null while there is none. */
  get current(): LibvirtConnection | null {
    return this.#state === 'connected' ? this.#conn : null;
  }

  /** Connects, and keeps reconnecting after losses until stop(). Resolves after the first try. */
  start(): Promise<void> {
    this.#stopped = false;
    return this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    // A connection attempt that fails now has already said why (its state and the log).
    await this.#connecting?.catch(() => undefined);
    const conn = this.#conn;
    this.#conn = null;
    this.#set('closed', null);
    if (conn) await this.#closeQuietly(conn, 'stopping');
  }

  #set(state: HostState, reason: string | null, hint: string | null = null, retryAt: number | null = null): void {
    if (this.#state === state && this.#reason === reason && this.#retryAt === retryAt) return;
    this.#state = state;
    this.#reason = reason;
    this.#hint = hint;
    this.#retryAt = retryAt;
    log[state === 'lost' || state === 'retrying' ? 'warn' : 'info'](`host ${state}`, { uri: this.#deps.uri, ...(reason ? { reason } : {}) });
    this.#deps.state(state, reason);
  }

  #connect(): Promise<void> {
    this.#connecting ??= this.#tryConnect().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  async #tryConnect(): Promise<void> {
    this.#set(this.#attempt === 0 ? 'connecting' : 'retrying', this.#reason, this.#hint);
    let conn: LibvirtConnection | null = null;
    try {
      conn = await LibvirtConnection.open(this.#deps.uri, { readOnly: this.#deps.readOnly });
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
      this.#set('connected', null);
      await this.#deps.connected(conn);
    } catch (err) {
      if (this.#conn === conn) this.#conn = null;
      if (conn) await this.#closeQuietly(conn, 'a failed connection attempt');
      this.#retry(`cannot connect to ${this.#deps.uri}: ${toStrataError(err).message}`, connectionHint(err));
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
