// QEMU's user where libvirt's capabilities name none: the session instance runs no DAC driver (its
// capabilities list only <secmodel><model>none</model>), because its daemon is the connecting
// user's own and QEMU runs as that user. On this machine that is this process's user.
import type { QemuUser } from '../../../shared/health.ts';
import { localUri } from './local-access.ts';

/** This process's user for a local session URI; null for any other. */
export function sessionQemuUser(uri: string): QemuUser | null {
  if (localUri(uri)?.instance !== 'session' || !process.getuid || !process.getgid) return null;
  return { uid: process.getuid(), gid: process.getgid(), source: "the session instance, whose QEMU runs as the user who connects (its capabilities name no DAC label)" };
}

/** QEMU's user as the capabilities' DAC label says, else the session's rule; null when neither tells. */
export function qemuUserOr(fromCapabilities: QemuUser | null, uri: string): QemuUser | null {
  return fromCapabilities ?? sessionQemuUser(uri);
}
