// Where Strata keeps its files when the shell does not say (Electron passes its userData folder):
// $STRATA_DATA_DIR, else the XDG data folder.
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['STRATA_DATA_DIR']) return env['STRATA_DATA_DIR'];
  return join(env['XDG_DATA_HOME'] || join(homedir(), '.local/share'), 'strata');
}

// QEMU of the system instance runs as its own user and cannot enter a private home folder, so a
// root-run Strata keeps lab images where libvirt keeps images; others keep them in the data folder.
export function defaultLabRoot(dataDir: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env['STRATA_LAB_DIR']) return env['STRATA_LAB_DIR'];
  return process.getuid?.() === 0 ? '/var/lib/libvirt/images/strata-lab' : join(dataDir, 'lab');
}
