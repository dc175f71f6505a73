// The only pages Strata opens outside itself (in the user's browser): libvirt's and QEMU's
// documentation. Anything else a page asks to open is refused, so a link that slipped into a
// domain name or an error message cannot send the user anywhere.

/** https origins, each with the path under which links may point. */
export const externalLinkAllowlist: readonly { origin: string; path: string }[] = [
  { origin: 'https://libvirt.org', path: '/' },
  { origin: 'https://www.libvirt.org', path: '/' },
  { origin: 'https://www.qemu.org', path: '/' },
  { origin: 'https://qemu-project.gitlab.io', path: '/qemu/' },
];

/** Whether `url` may be opened in the user's browser: https, no credentials, an allowed origin and path. */
export function isAllowedExternalUrl(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const u = new URL(url);
  if (u.protocol !== 'https:' || u.username !== '' || u.password !== '') return false;
  return externalLinkAllowlist.some((a) => u.origin === a.origin && u.pathname.startsWith(a.path));
}
