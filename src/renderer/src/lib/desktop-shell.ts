// What the desktop shell asks of the page (ShellEvent, src/shared/channels.ts): show the job a
// clicked notification was about, or the host a second launch named. In a browser there is no
// shell and nothing here does anything.
import type { ShellEvent } from '../../../shared/channels.ts';
import type { Strata } from './strata.svelte.ts';

/**
 * Whether the desktop shell notifies of jobs itself (it hears the core's events even with the
 * window hidden); the page then shows no web Notification, so nothing is told twice.
 */
export function shellNotifies(): boolean {
  return typeof window !== 'undefined' && window.strata?.nativeNotifications === true;
}

/** Follows the shell's events until the returned function is called. */
export function followShell(strata: Strata): () => void {
  const bridge = typeof window === 'undefined' ? undefined : window.strata;
  if (!bridge) return () => undefined;
  return bridge.onShell((event) => void showShellEvent(strata, event));
}

async function showShellEvent(strata: Strata, event: ShellEvent): Promise<void> {
  if (event.kind === 'show-job') {
    strata.show(event.hostId, event.domain);
    return;
  }
  strata.view = 'hosts';
  // A host the shell has just added may not have reached the page's list yet.
  if (!strata.hosts.host(event.hostId)) await strata.hosts.load();
  const entry = strata.hosts.host(event.hostId);
  if (entry) entry.expanded = true;
}
