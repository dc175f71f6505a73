// Errors cross every boundary (IPC, WebSocket) as one envelope that keeps libvirt's own code.

export type ErrorKind =
  | 'invalid-request' // the request itself is wrong: a missing field, a negative bandwidth
  | 'not-found' // no such host, domain or disk
  | 'conflict' // the disk already has a job, the job is not ready, …
  | 'libvirt' // libvirt refused or failed; `libvirt` says how
  | 'unavailable' // the host cannot be reached
  | 'lab' // a practice lab could not be made or removed: a tool missing or failing, a folder it cannot use
  | 'internal';

export interface LibvirtErrorInfo {
  /** e.g. 'VIR_ERR_NO_DOMAIN' */
  code: string;
  /** e.g. 'VIR_FROM_QEMU' */
  domain: string;
  level: string;
  codeNumber: number;
  domainNumber: number;
}

export interface ErrorEnvelope {
  kind: ErrorKind;
  message: string;
  /** What the user can do about it. */
  hint: string | null;
  libvirt: LibvirtErrorInfo | null;
  /** For invalid requests: which field, and what is wrong with it. */
  issues: { path: string; message: string }[];
}

export class StrataError extends Error {
  override name = 'StrataError';
  readonly kind: ErrorKind;
  readonly hint: string | null;
  readonly libvirt: LibvirtErrorInfo | null;
  readonly issues: { path: string; message: string }[];

  constructor(
    kind: ErrorKind,
    message: string,
    options: { hint?: string | null; libvirt?: LibvirtErrorInfo | null; issues?: { path: string; message: string }[]; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.hint = options.hint ?? null;
    this.libvirt = options.libvirt ?? null;
    this.issues = options.issues ?? [];
  }

  toEnvelope(): ErrorEnvelope {
    return { kind: this.kind, message: this.message, hint: this.hint, libvirt: this.libvirt, issues: this.issues };
  }

  static fromEnvelope(e: ErrorEnvelope): StrataError {
    return new StrataError(e.kind, e.message, { hint: e.hint, libvirt: e.libvirt, issues: e.issues });
  }
}
