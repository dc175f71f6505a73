// Turns what the addon throws into Strata's error envelope, keeping libvirt's own code.
import { StrataError, type ErrorKind } from '../../shared/errors.ts';
import { log } from '../log/logger.ts';
import { libvirtCode } from './error-code.ts';
import { native } from './native.ts';

const kindByCode: Record<string, ErrorKind> = {
  VIR_ERR_NO_DOMAIN: 'not-found',
  VIR_ERR_INVALID_ARG: 'invalid-request',
  VIR_ERR_BLOCK_COPY_ACTIVE: 'conflict',
  VIR_ERR_OPERATION_INVALID: 'conflict',
  VIR_ERR_OPERATION_FAILED: 'libvirt',
  VIR_ERR_NO_CONNECT: 'unavailable',
  VIR_ERR_SYSTEM_ERROR: 'unavailable',
  VIR_ERR_RPC: 'unavailable',
  VIR_ERR_INVALID_CONN: 'unavailable',
  VIR_ERR_AUTH_FAILED: 'unavailable',
};

export function isLibvirtError(err: unknown): err is InstanceType<typeof native.LibvirtError> {
  return err instanceof native.LibvirtError;
}

export { libvirtCode };

/**
 * What to do about a connection that failed, from libvirt's code and words: the two causes people
 * meet first (no daemon, no permission) get their fix; anything else the general advice.
 */
export function connectionHint(err: unknown): string {
  const code = libvirtCode(err) ?? '';
  const message = err instanceof Error ? err.message : String(err);
  if (/^VIR_ERR_(AUTH_FAILED|AUTH_CANCELLED|AUTH_UNAVAILABLE|ACCESS_DENIED)$/.test(code) || /permission denied|access denied|not authorized|polkit/i.test(message)) {
    return 'This user may not talk to libvirtd: join the libvirt group (sudo usermod -aG libvirt $USER), then log out and in again.';
  }
  if (/no such file|connection refused|failed to connect socket/i.test(message)) {
    return 'libvirtd is not running or not reachable: start it (sudo systemctl start libvirtd, or virtqemud.socket on modular installs). Strata retries by itself.';
  }
  return 'Strata retries by itself; check the URI and that the host is up.';
}

/**
 * Wraps any error as a StrataError; `action` says what was being done, for the message. Errors
 * that already know their kind and hint (StrataError and its kinds, such as the lab's LabError)
 * pass unchanged; anything unforeseen is 'internal'.
 */
export function toStrataError(err: unknown, action?: string): StrataError {
  if (err instanceof StrataError) return err;
  if (isLibvirtError(err)) {
    // libvirt failures on their way to the user pass here once (a StrataError returns above).
    log.debug('libvirt call failed', { action, code: err.code, from: err.domain, err: err.message });
    const message = action ? `${action}: ${err.message}` : err.message;
    return new StrataError(kindByCode[err.code] ?? 'libvirt', message, {
      libvirt: {
        code: err.code,
        domain: err.domain,
        level: err.level,
        codeNumber: err.codeNumber,
        domainNumber: err.domainNumber,
      },
      cause: err,
    });
  }
  if (err instanceof TypeError || err instanceof RangeError) {
    return new StrataError('invalid-request', err.message, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new StrataError('internal', action ? `${action}: ${message}` : message, { cause: err });
}
