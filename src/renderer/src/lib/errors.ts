// Turns whatever a failed call threw into what ErrorBanner shows. StrataErrors keep their hint
// and libvirt code; anything else (a bug, a browser error) is shown as an internal error rather
// than dropped.
import { StrataError, type ErrorKind } from '../../../shared/errors.ts';

export interface ShownError {
  kind: ErrorKind;
  message: string;
  hint: string | null;
  /** libvirt's code, e.g. VIR_ERR_OPERATION_INVALID, when libvirt said it. */
  libvirtCode: string | null;
  /** Field-level problems for an invalid request. */
  issues: { path: string; message: string }[];
}

export function toShownError(error: unknown): ShownError {
  if (error instanceof StrataError) {
    return { kind: error.kind, message: error.message, hint: error.hint, libvirtCode: error.libvirt?.code ?? null, issues: error.issues };
  }
  const message = error instanceof Error ? error.message : typeof error === 'string' ? error : 'Something went wrong';
  return { kind: 'internal', message, hint: null, libvirtCode: null, issues: [] };
}
