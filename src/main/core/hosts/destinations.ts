// Where a copy or a new layer may be written on this machine: never over an existing file unless
// reuse is asked, and never into Strata's own data folder. Checked only for hosts whose files
// Strata can see itself (local URIs); a remote host's libvirt refuses what it cannot do.
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, resolve, sep } from 'node:path';
import { StrataError } from '../../../shared/errors.ts';

/** Whether a URI names this machine, where Strata can see the host's files itself. */
export function isLocalUri(uri: string): boolean {
  try {
    const host = new URL(uri).hostname;
    return host === '' || host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
  } catch {
    // Not a URL at all (libvirt also takes some aliases): not a URI Strata can call local.
    return false;
  }
}

// Where a path really points: symbolic links in its existing part resolved, so a link cannot carry
// a destination into a folder the plain path is outside of.
function realPath(path: string): string {
  let dir = resolve(path);
  const rest: string[] = [];
  for (;;) {
    try {
      return resolve(realpathSync(dir), ...rest.reverse());
    } catch {
      // This part does not exist yet: resolve its parent and keep the rest as written.
      if (dirname(dir) === dir) return resolve(path);
      rest.push(basename(dir));
      dir = dirname(dir);
    }
  }
}

const isWithin = (path: string, folder: string): boolean => path === folder || path.startsWith(folder.endsWith(sep) ? folder : folder + sep);

export interface DestinationRules {
  /** Strata's data folder (saved hosts, history, logs); unset: no folder is protected. */
  dataDir?: string | undefined;
  /** The practice labs' folder, which may lie inside the data folder and holds images. */
  labRoot: string | null;
}

// Strata's own files live in the data folder; an image written there could replace them.
function refuseDataDir(destination: string, rules: DestinationRules): void {
  if (rules.dataDir === undefined) return;
  const path = realPath(destination);
  if (!isWithin(path, realPath(rules.dataDir)) || (rules.labRoot !== null && isWithin(path, realPath(rules.labRoot)))) return;
  throw new StrataError('invalid-request', `${destination} is inside Strata's data folder ${rules.dataDir}, which holds Strata's own files`, {
    hint: "Choose a destination outside it, for example beside the disk's other layers.",
  });
}

/** A copy's destination: new unless reuse is asked, and then it must exist. */
export function checkCopyDestination(destination: string, reuseExisting: boolean, rules: DestinationRules): void {
  refuseDataDir(destination, rules);
  const exists = existsSync(destination);
  if (exists && !reuseExisting) {
    throw new StrataError('conflict', `${destination} already exists: Strata does not write over a file unless asked`, {
      hint: 'Choose a new path, or set reuseExisting with the confirmation "reuse-existing-file".',
    });
  }
  if (!exists && reuseExisting) {
    throw new StrataError('invalid-request', `reuseExisting is set but ${destination} does not exist`, {
      hint: 'Create the image first (same virtual size as the disk), or leave reuseExisting off to let libvirt create it.',
    });
  }
}

/** A snapshot's new layer: always a new file. */
export function checkSnapshotDestination(path: string, rules: DestinationRules): void {
  refuseDataDir(path, rules);
  if (existsSync(path)) {
    throw new StrataError('conflict', `${path} already exists: Strata does not write over a file`, {
      hint: 'Choose another destination, or give none: the new layer then goes beside the active one, under a new name.',
    });
  }
}
