// Practice lab domains: a backing chain with real data and a transient domain running on it.
// Used by the native tests, and later by the app to give newcomers a scratch VM to try block jobs
// on. The caller brings the connection (this module never loads the addon itself).
import { access, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type * as Native from '../../../../native/index.d.ts';
import { libvirtCode } from '../../libvirt/error-code.ts';
import { labDomainXml } from './lab-domain-xml.ts';
import { createBackingChain, LabError, type BackingChain, type BackingChainOptions } from './images.ts';

/** A file in every lab directory: removeLabDomain deletes only directories that carry it. */
export const LAB_MARKER = '.strata-lab';

export interface LabDomainOptions extends Omit<BackingChainOptions, 'dir'> {
  name: string;
  /** The lab's own images directory; created if missing, must be empty (but for a marker). */
  dir: string;
  memoryMiB?: number;
  /**
   * VIR_DOMAIN_START_AUTODESTROY: libvirtd destroys the domain when the connection that created
   * it closes, including when the process dies. Good for tests; default false.
   */
  autoDestroy?: boolean;
  /** Recorded in the domain's <metadata>; default process.pid. */
  ownerPid?: number;
}

export interface LabDomain {
  name: string;
  dir: string;
  /** Image paths from the base to the active layer. */
  layers: string[];
  chain: BackingChain;
  domain: Native.Domain;
}

/** The subset of the addon's Connection this module uses. */
export type LabConnection = Pick<Native.Connection, 'createXML' | 'lookupByName'>;

// The addon's value, checked against its type declaration (this module does not load the addon).
const VIR_DOMAIN_START_AUTODESTROY: typeof Native.VIR_DOMAIN_START_AUTODESTROY = 2;

/** libvirt's codes for "there is no such domain" and "it is not running": nothing to destroy. */
const GONE = new Set(['VIR_ERR_NO_DOMAIN', 'VIR_ERR_OPERATION_INVALID']);

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    // Missing or unreadable: either way there is nothing of ours there to use.
    return false;
  }
}

/** Makes the chain in `dir`, then starts a transient domain on its active layer. */
export async function createLabDomain(conn: LabConnection, options: LabDomainOptions): Promise<LabDomain> {
  const dir = resolve(options.dir);
  const madeDir = !(await exists(dir));
  await mkdir(dir, { recursive: true });
  const present = (await readdir(dir)).filter((f) => f !== LAB_MARKER);
  if (present.length > 0) {
    throw new LabError(`${dir} is not empty (${present.slice(0, 3).join(', ')}…): a lab needs a directory of its own`, 'BAD_OPTION');
  }
  await writeFile(join(dir, LAB_MARKER), `${options.name}\n`);
  try {
    const chain = await createBackingChain({ ...options, dir });
    const active = chain.layers[chain.layers.length - 1];
    if (active === undefined) throw new LabError('the chain has no layer', 'BAD_OPTION');
    const xml = labDomainXml({
      name: options.name,
      diskPath: active,
      labDir: dir,
      ownerPid: options.ownerPid ?? process.pid,
      ...(options.memoryMiB !== undefined ? { memoryMiB: options.memoryMiB } : {}),
    });
    const flags = options.autoDestroy ? VIR_DOMAIN_START_AUTODESTROY : 0;
    const domain = await conn.createXML(xml, flags);
    return { name: options.name, dir, layers: chain.layers, chain, domain };
  } catch (err) {
    // Leave nothing behind: the images we made, and the directory if we made it.
    if (madeDir) await rm(dir, { recursive: true, force: true });
    else await removeLabFiles(dir);
    throw err;
  }
}

async function removeLabFiles(dir: string): Promise<void> {
  // A folder that is already gone has no files left to remove.
  for (const f of await readdir(dir).catch(() => [] as string[])) await rm(join(dir, f), { recursive: true, force: true });
}

/**
 * Destroys the lab domain (a domain that is gone or not running is fine) and removes its images
 * directory. Refuses a directory without the lab marker, so a wrong path cannot wipe anything else.
 * `lab.domain` is used when given; otherwise the domain is looked up by name.
 */
export async function removeLabDomain(
  conn: LabConnection | null,
  lab: { name: string; dir: string; domain?: Native.Domain | null },
): Promise<void> {
  let domain = lab.domain ?? null;
  if (domain === null && conn !== null) {
    try {
      domain = await conn.lookupByName(lab.name);
    } catch (err) {
      if (!GONE.has(libvirtCode(err) ?? '')) throw err;
    }
  }
  if (domain !== null) {
    try {
      await domain.destroy();
    } catch (err) {
      // A domain handle of a closed connection rejects with VIR_ERR_INVALID_DOMAIN: look it up
      // again on the caller's connection instead.
      if (libvirtCode(err) === 'VIR_ERR_INVALID_DOMAIN' && conn !== null && lab.domain) {
        await removeLabDomain(conn, { name: lab.name, dir: lab.dir });
        return;
      }
      if (!GONE.has(libvirtCode(err) ?? '')) throw err;
    }
  }
  await removeLabDir(lab.dir);
}

/** Removes a lab images directory, only if it carries the lab marker (or is already gone). */
export async function removeLabDir(dir: string): Promise<void> {
  const absolute = resolve(dir);
  if (!(await exists(absolute))) return;
  if (!(await exists(join(absolute, LAB_MARKER)))) {
    throw new LabError(`${absolute} has no ${LAB_MARKER} marker: not removing a directory the lab did not make`, 'NOT_A_LAB_DIR');
  }
  await rm(absolute, { recursive: true, force: true });
}
