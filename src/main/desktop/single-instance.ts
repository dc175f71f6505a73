// One Strata per user. A second launch hands the first its --uri through Electron's
// single-instance `additionalData` (argv may arrive reordered or empty, per Electron's docs) and
// quits; the first adds that host unless one with the URI exists, then shows it. The URI goes
// through the contract's own validation (hosts.add), never straight to libvirt.
import type { Reply } from '../../shared/bridge.ts';
import type { ShellEvent } from '../../shared/channels.ts';
import type { HostInfo } from '../../shared/model.ts';
import { appFlags, type Flags } from '../boot/flags.ts';

/** What the second instance sends the first. */
export interface HandOver {
  uri: string | null;
}

/** From this launch's flags, read once at start. */
export function handOverData(flags: Flags): HandOver {
  return { uri: flags.uri ?? null };
}

/** The URI the second launch asked for: from its additionalData, else from its own argv. */
export function receivedUri(additionalData: unknown, argv: readonly string[]): string | null {
  if (typeof additionalData === 'object' && additionalData !== null && 'uri' in additionalData) {
    const uri = (additionalData as { uri: unknown }).uri;
    return typeof uri === 'string' ? uri : null;
  }
  return appFlags(argv).uri ?? null;
}

export interface Dispatch {
  handle(method: unknown, params: unknown): Promise<Reply>;
}

export type Adopted = { ok: true; event: ShellEvent; added: boolean } | { ok: false; message: string };

/**
 * Finds the writable host with this URI, or adds it through hosts.add (which validates it and
 * saves it); the result is the event that makes the window show that host.
 */
export async function adoptUri(uri: string, dispatcher: Dispatch): Promise<Adopted> {
  const listed = await dispatcher.handle('hosts.list', {});
  if (!listed.ok) return { ok: false, message: listed.error.message };
  const existing = (listed.result as HostInfo[]).find((h) => h.uri === uri && !h.readOnly);
  if (existing) return { ok: true, event: { kind: 'show-host', hostId: existing.id }, added: false };
  const added = await dispatcher.handle('hosts.add', { uri });
  if (!added.ok) return { ok: false, message: added.error.message };
  return { ok: true, event: { kind: 'show-host', hostId: (added.result as HostInfo).id }, added: true };
}
