// Offline jobs (on a shut-off domain's images) open the images themselves, so they exist only
// where the images are on this machine: a libvirt URI without a host (qemu:///system,
// qemu:///session). Shared, so the window greys the verbs out with the engine's own reason.

/** Null when `uri` reaches a local daemon; otherwise why offline operations are not offered. */
export function offlineRefusal(uri: string): string | null {
  let host = '';
  let transport = '';
  try {
    const parsed = new URL(uri);
    host = parsed.hostname;
    transport = parsed.protocol.replace(/:$/, '').split('+')[1] ?? '';
  } catch {
    return `${uri} is not a libvirt URI Strata can read`;
  }
  if (host === '' && (transport === '' || transport === 'unix')) return null;
  return (
    `operations on shut-off domains need the disk images on this machine, and ${uri} is another host's libvirt: ` +
    'run Strata on that host (or start the domain, so its QEMU runs the job there)'
  );
}
