// Backup sets on disk: under a host's backup folder, a folder per domain, and in it a folder per
// set (a full backup and the incrementals on top of it) with its images and manifest. Listing
// reads these folders alone, so a new Strata pointed at them lists the same sets.
import { join } from 'node:path';
import type { BackupPoint, BackupSet } from '../../../shared/backup.ts';
import { StrataError } from '../../../shared/errors.ts';
import { localFiles, type BackupFiles } from './files.ts';
import { manifestName, readManifest, writeManifest, type Manifest } from './manifest.ts';

/**
 * A domain's folder name: libvirt allows almost any character in a name (not '/'), so every byte
 * outside letters, digits, '-' and '_' is written as %HH, and a name can never be '.', '..' or hidden.
 */
export function domainFolderName(domain: string): string {
  let out = '';
  for (const byte of Buffer.from(domain, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `20261203T162500123Z`: sorts by time, valid in every file system. */
export function setIdAt(at: number): string {
  return new Date(at).toISOString().replace(/[-:.]/g, '');
}

export function imageFileName(disk: string, index: number, kind: BackupPoint['kind']): string {
  return `${disk}.${index}.${kind}.qcow2`;
}

/** The files a point of `disk` restores from, from the full backup up: empty when a link is missing. */
export function chainOf(manifest: Pick<Manifest, 'points'>, index: number, disk: string): string[] {
  const byFile = new Map(manifest.points.flatMap((p) => p.images.map((i) => [i.file, i] as const)));
  const top = manifest.points.find((p) => p.index === index)?.images.find((i) => i.disk === disk);
  const files: string[] = [];
  for (let image = top; image; image = image.backingFile === null ? undefined : byFile.get(image.backingFile)) {
    files.unshift(image.file);
    if (image.backingFile === null) return files;
    if (files.length > manifest.points.length) break;
  }
  return [];
}

const reasonOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class BackupStore {
  readonly root: string;
  /** Where the folder is: this machine, or the remote host whose libvirt writes the images. */
  readonly files: BackupFiles;
  /** One manifest change at a time per set, so two ends never write over each other. */
  readonly #writing = new Map<string, Promise<void>>();

  constructor(root: string, files: BackupFiles = localFiles) {
    this.root = root;
    this.files = files;
  }

  domainFolder(domain: string): string {
    return join(this.root, domainFolderName(domain));
  }

  setFolder(domain: string, setId: string): string {
    return join(this.domainFolder(domain), setId);
  }

  /** Every set under the folder (or one domain's), oldest first; a folder that is not a set is listed with its problem. */
  async list(domain?: string): Promise<BackupSet[]> {
    const folders = domain === undefined ? await this.#subfolders(this.root) : [domainFolderName(domain)];
    const sets: BackupSet[] = [];
    for (const folder of folders) {
      for (const id of await this.#subfolders(join(this.root, folder))) {
        const set = await this.read(join(this.root, folder, id), id);
        if (domain === undefined || set.domain === domain || set.problem !== null) sets.push(set);
      }
    }
    return sets.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  async get(domain: string, setId: string): Promise<{ set: BackupSet; manifest: Manifest }> {
    const folder = this.setFolder(domain, setId);
    let manifest: Manifest;
    try {
      manifest = await readManifest(folder, this.files);
    } catch (err) {
      throw new StrataError('not-found', `no backup set '${setId}' of ${domain} in ${this.domainFolder(domain)} (${reasonOf(err)})`, {
        hint: 'backup.list names the sets there.',
      });
    }
    return { set: await this.#view(folder, setId, manifest), manifest };
  }

  async read(folder: string, id: string): Promise<BackupSet> {
    try {
      return await this.#view(folder, id, await readManifest(folder, this.files));
    } catch (err) {
      return {
        id,
        domain: '',
        domainUuid: null,
        hostUri: '',
        folder,
        strataVersion: '',
        createdAt: 0,
        disks: [],
        points: [],
        good: false,
        problem: `not a backup set that can be read: ${reasonOf(err)}`,
      };
    }
  }

  // A point is good when it completed and every file of its chain is there.
  async #view(folder: string, id: string, manifest: Manifest): Promise<BackupSet> {
    let problem: string | null = null;
    let good = false;
    for (const point of manifest.points) {
      if (point.status !== 'complete') continue;
      const files = manifest.disks.map((d) => chainOf(manifest, point.index, d.target));
      const missing: string[] = [];
      for (const file of files.flat()) if ((await this.files.size(join(folder, file)).catch(() => null)) === null) missing.push(file);
      if (files.some((f) => f.length === 0)) problem = `point ${point.index} does not name a whole chain for every disk`;
      else if (missing.length > 0) problem = `files of point ${point.index} are missing: ${missing.join(', ')}`;
      else good = true;
    }
    return {
      id,
      domain: manifest.domain.name,
      domainUuid: manifest.domain.uuid,
      hostUri: manifest.hostUri,
      folder,
      strataVersion: manifest.strataVersion,
      createdAt: manifest.createdAt,
      disks: manifest.disks,
      points: manifest.points,
      good,
      problem,
    };
  }

  /** Makes a new set's folder with its first manifest; the folder is QEMU's to write into, so others may enter it. */
  async create(manifest: Manifest): Promise<string> {
    const domainFolder = this.domainFolder(manifest.domain.name);
    await this.files.makeFolders(domainFolder);
    for (let attempt = 0; ; attempt++) {
      const id = setIdAt(manifest.createdAt) + (attempt === 0 ? '' : `-${attempt}`);
      if (!(await this.files.makeNewFolder(join(domainFolder, id)))) {
        if (attempt < 100) continue;
        throw new StrataError('conflict', `every set name like ${id} is taken in ${domainFolder}`);
      }
      await writeManifest(join(domainFolder, id), manifest, this.files);
      return id;
    }
  }

  /** Changes a set's manifest: read, change, write whole, one change at a time. */
  update(domain: string, setId: string, change: (m: Manifest) => void): Promise<void> {
    const folder = this.setFolder(domain, setId);
    const before = this.#writing.get(folder) ?? Promise.resolve();
    const next = before.then(async () => {
      const manifest = await readManifest(folder, this.files);
      change(manifest);
      await writeManifest(folder, manifest, this.files);
    });
    const settled = next.catch(() => undefined);
    this.#writing.set(folder, settled);
    void settled.then(() => {
      if (this.#writing.get(folder) === settled) this.#writing.delete(folder);
    });
    return next;
  }

  /**
   * Deletes a set: the images its manifest names, then the manifest, then the folder. Anything
   * else found there is left, and the folder with it: Strata deletes only what it wrote.
   */
  async remove(domain: string, setId: string): Promise<void> {
    const folder = this.setFolder(domain, setId);
    const manifest = await readManifest(folder, this.files);
    for (const point of manifest.points) for (const image of point.images) await this.files.removeFile(join(folder, image.file));
    await this.files.removeFile(join(folder, manifestName));
    for (const entry of await this.files.entries(folder)) if (entry.startsWith(`.${manifestName}.`)) await this.files.removeFile(join(folder, entry));
    await this.files.removeEmptyFolder(folder);
    await this.files.removeEmptyFolder(this.domainFolder(domain)).catch(() => false);
  }

  async #subfolders(folder: string): Promise<string[]> {
    try {
      return (await this.files.subfolders(folder)) ?? [];
    } catch (err) {
      throw new StrataError('unavailable', `cannot read the backup folder ${folder}${this.files.remote ? ` on ${this.files.remote}` : ''}: ${reasonOf(err)}`, {
        hint: 'Give this user read access to it, or choose another folder with backup.setLocation.',
      });
    }
  }
}

export interface Retention {
  keepSets: number | null;
  keepDays: number | null;
}

/**
 * The sets retention removes, after a backup succeeded: good sets beyond the newest `keepSets`
 * and older than `keepDays`, and sets that never became good older than the newest good one. The
 * newest good set is always kept, and so is any set with a point still being written.
 */
export function setsToRemove(sets: readonly BackupSet[], retention: Retention, now: number): BackupSet[] {
  const good = sets.filter((s) => s.good && s.problem === null).sort((a, b) => b.createdAt - a.createdAt);
  const newest = good[0];
  if (!newest) return [];
  const busy = (s: BackupSet): boolean => s.points.some((p) => p.status === 'running');
  const doomed: BackupSet[] = [];
  good.forEach((set, rank) => {
    if (set === newest || busy(set)) return;
    const beyondCount = retention.keepSets !== null && rank >= retention.keepSets;
    const beyondAge = retention.keepDays !== null && now - set.createdAt > retention.keepDays * 86_400_000;
    const rules = [retention.keepSets, retention.keepDays].filter((r) => r !== null).length;
    // With both rules a set goes only when both let it go; with one, when that one does.
    if (rules > 0 && (rules === 2 ? beyondCount && beyondAge : beyondCount || beyondAge)) doomed.push(set);
  });
  for (const set of sets) {
    if (!set.good && set.problem === null && !busy(set) && set.createdAt < newest.createdAt) doomed.push(set);
  }
  return doomed;
}
