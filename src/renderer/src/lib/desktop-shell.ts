// What the desktop shell asks of the page (ShellEvent, src/shared/channels.ts): show the job a
// clicked notification was about, or the host a second launch named. In a browser there is no
// shell and nothing here does anything. This module knows the page only through ShellTarget, so
// the stores can ask it whether the shell notifies without an import cycle through Strata.

/** What the page does for the shell's events (Strata implements it). */
export interface ShellTarget {
  /** Shows a domain in the hosts view. */
  show(hostId: string, domain: string): void;
  /** Shows a host in the hosts view, reading the hosts again if it is new to the page. */
  showHost(hostId: string): Promise<void>;
}

/**
 * Whether the desktop shell notifies of jobs itself (it hears the core's events even with the
 * window hidden); the page then shows no web Notification, so nothing is told twice.
 */
export function shellNotifies(): boolean {
  return typeof window !== 'undefined' && window.strata?.nativeNotifications === true;
}

/** Follows the shell's events until the returned function is called. */
export function followShell(target: ShellTarget): () => void {
  const bridge = typeof window === 'undefined' ? undefined : window.strata;
  if (!bridge) return () => undefined;
  return bridge.onShell((event) => {
    if (event.kind === 'show-job') target.show(event.hostId, event.domain);
    else void target.showHost(event.hostId);
  });
}
