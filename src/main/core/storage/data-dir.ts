// Where Strata keeps its files, the same for the desktop app and `npm run serve`:
// $STRATA_DATA_DIR, else the XDG data folder.
import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** Strata cannot start; the message says what failed and what to do, in one line. */
export class StartupError extends Error {
  override name = 'StartupError';
}

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

/** Makes the data folder if needed and checks Strata may read and write it, before anything is read. */
export async function prepareDataDir(dir: string): Promise<void> {
  try {
    await makeFolder(dir);
    await access(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new StartupError(
      `cannot use the data folder ${dir} (${reason}): give this user read and write access to it ` +
        `(e.g. \`sudo chown -R "$USER" ${dir}\`), or start with STRATA_DATA_DIR set to another folder`,
      { cause: err },
    );
  }
}

// Node 20's recursive mkdir loops for ever on a folder the file system will not create although
// its parent exists (/proc/x answers ENOENT), so each level is made on its own and a level that
// stays missing after its parent exists is an error. Something other than a folder in its place
// is named by mkdir's own EEXIST.
async function makeFolder(dir: string, parentMade = false): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !parentMade && dirname(dir) !== dir) {
      await makeFolder(dirname(dir));
      return makeFolder(dir, true);
    }
    if (code !== 'EEXIST' || !(await stat(dir)).isDirectory()) throw err;
  }
}

/** Why Strata could not start, as one line for a terminal or a dialog (the addon's message included). */
export function startupFailureText(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^strata: /, '').replace(/\s*\n\s*/g, ' ');
}
