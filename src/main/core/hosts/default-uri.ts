// The URI Strata opens when none is given: `--uri`, else LIBVIRT_DEFAULT_URI (as virsh does), else
// the system QEMU driver.
export function defaultUri(cliUri: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['LIBVIRT_DEFAULT_URI'];
  if (cliUri) return cliUri;
  if (fromEnv) return fromEnv;
  return 'qemu:///system';
}
