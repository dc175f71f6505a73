// The main process's log: one logfmt line per event (`time=… level=warn host=… job=… msg="…"`),
// to stderr and to a rotating file in the data folder. logfmt rather than JSON lines because the
// same line is read by people on a terminal and by grep (`grep 'job=…' strata.log`); values that
// need it are quoted, so the line still parses as key=value pairs.
//
// `log` works from the first import, writing warnings and errors to stderr only, so library code
// logs without wiring; the shell (serve, Electron) calls configureLogging() once it knows the data
// folder. Logging never throws: a log that cannot be written must not take the app down with it.
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export type Level = 'error' | 'warn' | 'info' | 'debug';
export type Fields = Record<string, unknown>;

export interface Logger {
  error(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  debug(msg: string, fields?: Fields): void;
  /** Whether a line at `level` goes anywhere: check it before computing costly fields. */
  enabled(level: Level): boolean;
  /** A logger that adds `fields` (e.g. `{ host, job }`) to every line. */
  child(fields: Fields): Logger;
}

export interface LogOptions {
  /** The data folder; the log goes to `<dataDir>/logs/strata.log`. Null or absent: stderr only. */
  dataDir?: string | null;
  /** Debug lines everywhere. */
  verbose?: boolean;
  /** Default: debug when verbose, else info. */
  fileLevel?: Level;
  /** Default: debug when verbose, else warn. */
  stderrLevel?: Level;
  /** The file is renamed to strata.log.1 once it would pass this size. Default 5 MiB. */
  maxFileBytes?: number;
  /** Rotated files kept beside strata.log (strata.log.1 … .N). Default 3. */
  keepFiles?: number;
  /** Where stderr lines go (tests capture them). */
  stderr?: (line: string) => void;
  now?: () => Date;
}

const rank: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };
/** Below every level: nothing is written. */
const off = -1;
const defaultMaxFileBytes = 5 * 1024 * 1024;
const defaultKeepFiles = 3;
/** Info and debug lines are gathered for this long and written together; warnings at once. */
const batchMs = 200;

const writeStderr = (line: string): void => {
  process.stderr.write(line);
};

function quote(value: string): string {
  return value === '' || /[\s"=\\]|[\u0000-\u001f]/.test(value) ? JSON.stringify(value) : value;
}

function text(value: unknown): string {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    // Node's system errors start their message with the code already.
    return typeof code === 'string' && !value.message.startsWith(code) ? `${code}: ${value.message}` : value.message;
  }
  if (typeof value === 'string') return value;
  if (value === undefined) return 'undefined';
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value);
    } catch (err) {
      // A cycle or a throwing toJSON: the line still says what kind of value it was, and why.
      return `${Object.prototype.toString.call(value)} (${err instanceof Error ? err.message : String(err)})`;
    }
  }
  return String(value);
}

/** One logfmt line, ending in a newline. */
export function formatLine(time: Date, level: Level, msg: string, fields: Fields): string {
  let line = `time=${time.toISOString()} level=${level}`;
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    line += ` ${key}=${quote(text(value))}`;
  }
  return `${line} msg=${quote(msg)}\n`;
}

/** Where the lines go: the levels in force, the file and its rotation. Shared by a root and its children. */
export class LogOutput {
  #stderrRank = rank.warn;
  #fileRank = off;
  #maxFileBytes = defaultMaxFileBytes;
  #keepFiles = defaultKeepFiles;
  #stderr: (line: string) => void = writeStderr;
  #now: () => Date = () => new Date();
  #path: string | null = null;
  #fd: number | null = null;
  #size = 0;
  #pending: string[] = [];
  #timer: NodeJS.Timeout | null = null;
  #exitHook = false;

  constructor(options: LogOptions = {}) {
    this.configure(options);
  }

  /** The log file in use, or null when lines go to stderr only. */
  get filePath(): string | null {
    return this.#path;
  }

  configure(options: LogOptions): void {
    this.close();
    const verbose = options.verbose === true;
    this.#stderrRank = rank[options.stderrLevel ?? (verbose ? 'debug' : 'warn')];
    this.#maxFileBytes = options.maxFileBytes ?? defaultMaxFileBytes;
    this.#keepFiles = options.keepFiles ?? defaultKeepFiles;
    if (options.stderr) this.#stderr = options.stderr;
    if (options.now) this.#now = options.now;
    this.#fileRank = off;
    if (!options.dataDir) return;
    const dir = join(options.dataDir, 'logs');
    const path = join(dir, 'strata.log');
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.#open(path);
      this.#fileRank = rank[options.fileLevel ?? (verbose ? 'debug' : 'info')];
      this.#path = path;
    } catch (err) {
      // The app works without its log file; the user learns where it would have been and why not.
      this.#toStderr(formatLine(this.#now(), 'warn', 'cannot write the log file: logging to stderr only', { path, err }));
    }
    if (!this.#exitHook) {
      this.#exitHook = true;
      // process.exit() skips timers: whatever is still gathered is written on the way out.
      process.on('exit', () => this.flush());
    }
  }

  enabled(level: Level): boolean {
    const r = rank[level];
    return r <= this.#stderrRank || r <= this.#fileRank;
  }

  write(level: Level, msg: string, fields: Fields): void {
    const r = rank[level];
    const toStderr = r <= this.#stderrRank;
    const toFile = r <= this.#fileRank;
    if (!toStderr && !toFile) return;
    let line: string;
    try {
      line = formatLine(this.#now(), level, msg, fields);
    } catch (err) {
      // A field whose getter throws, say: the event is still recorded, without its fields.
      line = formatLine(new Date(), level, msg, { logError: err });
    }
    if (toStderr) this.#toStderr(line);
    if (!toFile) return;
    this.#pending.push(line);
    if (r <= rank.warn) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), batchMs).unref();
  }

  /** Writes what is gathered to the file now. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#pending.length === 0 || this.#fd === null || this.#path === null) {
      this.#pending = [];
      return;
    }
    const chunk = Buffer.from(this.#pending.join(''));
    this.#pending = [];
    try {
      if (this.#size > 0 && this.#size + chunk.length > this.#maxFileBytes) this.#rotate(this.#path);
      writeSync(this.#fd, chunk);
      this.#size += chunk.length;
    } catch (err) {
      // A full disk or a removed folder: stop writing the file rather than fail every line.
      this.#toStderr(formatLine(this.#now(), 'warn', 'cannot write the log file: logging to stderr only', { path: this.#path, err }));
      this.close();
    }
  }

  /** Flushes and closes the file; later lines go to stderr only. */
  close(): void {
    this.flush();
    if (this.#fd !== null) {
      try {
        closeSync(this.#fd);
      } catch (err) {
        // Everything was written already; the descriptor is dropped either way.
        this.#toStderr(formatLine(this.#now(), 'warn', 'cannot close the log file', { path: this.#path, err }));
      }
    }
    this.#fd = null;
    this.#path = null;
    this.#fileRank = off;
  }

  #open(path: string): void {
    this.#fd = openSync(path, 'a', 0o600);
    this.#size = fstatSync(this.#fd).size;
  }

  #rotate(path: string): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
    rmSync(`${path}.${this.#keepFiles}`, { force: true });
    for (let n = this.#keepFiles - 1; n >= 1; n--) {
      try {
        renameSync(`${path}.${n}`, `${path}.${n + 1}`);
      } catch (err) {
        // A gap in the numbering (the first rotations) is normal; anything else is worth a line.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    if (this.#keepFiles > 0) renameSync(path, `${path}.1`);
    else rmSync(path, { force: true });
    this.#open(path);
  }

  #toStderr(line: string): void {
    try {
      this.#stderr(line);
    } catch {
      // stderr itself is gone (a closed pipe): there is nowhere left to say so.
    }
  }
}

class FieldLogger implements Logger {
  constructor(
    readonly output: LogOutput,
    readonly fields: Fields,
  ) {}

  error(msg: string, fields?: Fields): void {
    this.#write('error', msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.#write('warn', msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.#write('info', msg, fields);
  }
  debug(msg: string, fields?: Fields): void {
    this.#write('debug', msg, fields);
  }
  enabled(level: Level): boolean {
    return this.output.enabled(level);
  }
  child(fields: Fields): Logger {
    return new FieldLogger(this.output, { ...this.fields, ...fields });
  }

  #write(level: Level, msg: string, fields: Fields | undefined): void {
    if (!this.output.enabled(level)) return;
    this.output.write(level, msg, fields ? { ...this.fields, ...fields } : this.fields);
  }
}

/** A logger of its own over `output` (tests; the app uses `log`). */
export function createLogger(output: LogOutput, fields: Fields = {}): Logger {
  return new FieldLogger(output, fields);
}

const processOutput = new LogOutput();

/** The process-wide logger: `log.child({ host, job }).info('…')`. */
export const log: Logger = createLogger(processOutput);

/** Points the process-wide logger at the data folder and sets its levels; returns the log file, or null. */
export function configureLogging(options: LogOptions): string | null {
  processOutput.configure(options);
  return processOutput.filePath;
}

/** Writes every gathered line to the file (call before exiting). */
export function flushLogs(): void {
  processOutput.flush();
}
