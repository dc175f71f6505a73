// A QMP client over a UNIX socket: the greeting, `qmp_capabilities`, commands with ids and
// asynchronous events. One JSON object per line in both directions (QMP's wire format).
import { connect, type Socket } from 'node:net';

/** A QMP error answer, carrying QEMU's own class (e.g. 'GenericError', 'DeviceNotActive') and text. */
export class QmpError extends Error {
  override name = 'QmpError';
  constructor(
    readonly errorClass: string,
    readonly desc: string,
    readonly command: string,
  ) {
    super(`${command}: ${desc} (${errorClass})`);
  }
}

/** The monitor went away: the daemon exited, or the socket was closed. */
export class QmpClosedError extends Error {
  override name = 'QmpClosedError';
}

export type QmpValue = string | number | boolean | null | QmpValue[] | { [key: string]: QmpValue };
export type QmpObject = { [key: string]: QmpValue };

export interface QmpEvent {
  event: string;
  data: QmpObject;
  /** QEMU's timestamp of the event, in microseconds since the epoch. */
  timestampUs: number;
}

interface Pending {
  command: string;
  resolve: (value: QmpValue) => void;
  reject: (err: Error) => void;
}

function isObject(v: unknown): v is QmpObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class QmpClient {
  readonly #socket: Socket;
  readonly #pending = new Map<string, Pending>();
  readonly #listeners = new Set<(event: QmpEvent) => void>();
  readonly #closeListeners = new Set<() => void>();
  #buffer = '';
  #nextId = 1;
  #closed = false;
  /** QEMU's version as the greeting gave it, e.g. "7.2.22". */
  version = '';

  private constructor(socket: Socket) {
    this.#socket = socket;
  }

  /**
   * Connects, reads the greeting and leaves capabilities negotiation mode, all within
   * `timeoutMs`: a monitor that greets but never answers `qmp_capabilities` would otherwise hold
   * the caller for ever, since commands themselves have no deadline.
   */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const socket = connect(path);
    const client = new QmpClient(socket);
    let step = 'greeting';
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new QmpClosedError(`no QMP ${step} on ${path} within ${timeoutMs} ms`));
        // Also ends a qmp_capabilities still waiting: #shutDown rejects what is pending.
        socket.destroy();
      }, timeoutMs);
    });
    const greeting = new Promise<QmpObject>((resolve, reject) => {
      client.#onGreeting = resolve;
      socket.once('error', reject);
      socket.once('close', () => reject(new QmpClosedError(`the QMP monitor at ${path} closed before its greeting`)));
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => client.#read(chunk));
    socket.on('close', () => client.#shutDown());
    socket.on('error', () => client.#shutDown());
    const handshake = async (): Promise<void> => {
      const g = await greeting;
      const qmp = g['QMP'];
      if (isObject(qmp) && isObject(qmp['version']) && isObject(qmp['version']['qemu'])) {
        const v = qmp['version']['qemu'];
        client.version = `${String(v['major'])}.${String(v['minor'])}.${String(v['micro'])}`;
      }
      step = 'answer to qmp_capabilities';
      await client.execute('qmp_capabilities');
    };
    try {
      await Promise.race([handshake(), timedOut]);
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return client;
  }

  #onGreeting: ((greeting: QmpObject) => void) | null = null;

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs one command; resolves with its `return` value, rejects with a QmpError. */
  execute(command: string, args?: QmpObject): Promise<QmpValue> {
    if (this.#closed) return Promise.reject(new QmpClosedError(`${command}: the QMP monitor is closed`));
    const id = `strata-${this.#nextId++}`;
    const message: QmpObject = { execute: command, id };
    if (args) message['arguments'] = args;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { command, resolve, reject });
      this.#socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  /** Every event from now on; returns the function that stops listening. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onClose(listener: () => void): () => void {
    if (this.#closed) {
      queueMicrotask(listener);
      return () => undefined;
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /** Closes this client's connection; the daemon keeps running and accepts another client. */
  close(): void {
    this.#socket.end();
    this.#shutDown();
  }

  #read(chunk: string): void {
    this.#buffer += chunk;
    for (let nl = this.#buffer.indexOf('\n'); nl >= 0; nl = this.#buffer.indexOf('\n')) {
      const line = this.#buffer.slice(0, nl).trim();
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line) this.#dispatch(line);
    }
  }

  #dispatch(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      return;
    }
    if (!isObject(message)) return;
    if ('QMP' in message) {
      this.#onGreeting?.(message);
      this.#onGreeting = null;
      return;
    }
    if (typeof message['event'] === 'string') {
      const ts = message['timestamp'];
      const timestampUs = isObject(ts) ? Number(ts['seconds']) * 1e6 + Number(ts['microseconds']) : Date.now() * 1000;
      const event: QmpEvent = { event: message['event'], data: isObject(message['data']) ? message['data'] : {}, timestampUs };
      for (const listener of [...this.#listeners]) listener(event);
      return;
    }
    const id = message['id'];
    if (typeof id !== 'string') return;
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    const error = message['error'];
    if (isObject(error)) {
      pending.reject(new QmpError(String(error['class'] ?? 'GenericError'), String(error['desc'] ?? ''), pending.command));
    } else {
      pending.resolve(message['return'] ?? null);
    }
  }

  #shutDown(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#pending.values()) p.reject(new QmpClosedError(`${p.command}: the QMP monitor closed before answering`));
    this.#pending.clear();
    for (const listener of [...this.#closeListeners]) listener();
    this.#closeListeners.clear();
    this.#socket.destroy();
  }
}
