// libvirt's error code name ('VIR_ERR_NO_DOMAIN') on what the addon throws, read without loading
// the addon, so modules that tools load on their own (the lab) can use it too.
export function libvirtCode(err: unknown): string | null {
  if (!(err instanceof Error)) return null;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('VIR_ERR_') ? code : null;
}
