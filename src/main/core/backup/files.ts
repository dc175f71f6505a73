// Where a host's backup sets are: on this machine (a local host), or on the remote host itself (a
// qemu+ssh host, whose libvirt writes the images there). The store, the manifest, verification and
// the settling of a point use these few operations, each done here or over the host's ssh, so
// nothing else forks on where the files are. Remote commands are argument arrays: the paths are
// never read as shell syntax (remote-shell.ts quotes every word).
import { randomBytes } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StrataError } from '../../../shared/errors.ts';
import { runQemuImg, type ToolRun } from '../health/qemu-img.ts';
import type { RemoteShell } from '../hosts/ssh/remote-shell.ts';

export interface BackupFiles {
  /** Null on this machine; else the host the files are on, as words (user@host:port). */
  readonly remote: string | null;
  /** Makes the folder and its parents (mode 0755: QEMU writes into it). */
  makeFolders(path: string): Promise<void>;
  /** Makes one new folder; false when it exists already. */
  makeNewFolder(path: string): Promise<boolean>;
  /** The folder's entries that are folders, hidden ones left out; null when it does not exist. */
  subfolders(path: string): Promise<string[] | null>;
  /** The folder's entries (every kind). */
  entries(path: string): Promise<string[]>;
  readText(path: string): Promise<string>;
  /** Writes the file whole or not at all: a temporary name beside it, then a rename. */
  writeTextAtomic(path: string, text: string): Promise<void>;
  /** The file's size; null when it is not there. */
  size(path: string): Promise<number | null>;
  /** Removes a file; nothing when it is not there. */
  removeFile(path: string): Promise<void>;
  /** Removes an empty folder; false when it is not empty or not there. */
  removeEmptyFolder(path: string): Promise<boolean>;
  /** Free space of the file system the folder is (or will be) on. */
  freeBytes(path: string): Promise<number | null>;
  /** Runs qemu-img where the files are. */
  qemuImg(args: readonly string[], timeoutMs: number): Promise<ToolRun>;
}

/** Free space of the file system a folder on this machine is (or will be) on. */
export function freeBytesAt(folder: string): number | null {
  for (let dir = folder; ; dir = dirname(dir)) {
    try {
      const fs = statfsSync(dir);
      return fs.bavail * fs.bsize;
    } catch {
      // Not made yet: its parent's file system is where it will be.
      if (dir === dirname(dir)) return null;
    }
  }
}

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

export const localFiles: BackupFiles = {
  remote: null,
  async makeFolders(path) {
    await mkdir(path, { recursive: true, mode: 0o755 });
  },
  async makeNewFolder(path) {
    try {
      await mkdir(path, { mode: 0o755 });
      return true;
    } catch (err) {
      if (code(err) === 'EEXIST') return false;
      throw err;
    }
  },
  async subfolders(path) {
    try {
      return (await readdir(path, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
    } catch (err) {
      if (code(err) === 'ENOENT') return null;
      throw err;
    }
  },
  entries: (path) => readdir(path),
  readText: (path) => readFile(path, 'utf8'),
  async writeTextAtomic(path, text) {
    const temporary = `${dirname(path)}/.${path.slice(dirname(path).length + 1)}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temporary, text, { mode: 0o644 });
    await rename(temporary, path);
  },
  size: (path) =>
    stat(path).then(
      (s) => s.size,
      () => null,
    ),
  removeFile: (path) => rm(path, { force: true }),
  removeEmptyFolder: (path) =>
    rmdir(path).then(
      () => true,
      (err: unknown) => {
        if (code(err) === 'ENOTEMPTY' || code(err) === 'ENOENT' || code(err) === 'EEXIST') return false;
        throw err;
      },
    ),
  freeBytes: async (path) => freeBytesAt(path),
  qemuImg: runQemuImg,
};

// Small POSIX sh programs, their paths as arguments ("$1"...), never spliced into the text.
const scripts = {
  makeFolders: 'umask 022; mkdir -p -- "$1"',
  // 3: it was there already.
  makeNewFolder: 'umask 022; [ -e "$1" ] && exit 3; mkdir -- "$1"',
  // 3: no such folder. NUL-separated: a name holds any byte but / and NUL.
  subfolders: '[ -d "$1" ] || exit 3; cd -- "$1" || exit 1; for f in *; do [ -d "$f" ] && printf "%s\\0" "$f"; done; exit 0',
  entries: 'cd -- "$1" || exit 1; for f in * .[!.]* ..?*; do [ -e "$f" ] && printf "%s\\0" "$f"; done; exit 0',
  readText: 'exec cat -- "$1"',
  writeTextAtomic: 'umask 022; cat > "$1" && mv -f -- "$1" "$2" || { rm -f -- "$1"; exit 1; }',
  // 3: not there.
  size: '[ -f "$1" ] || exit 3; exec wc -c < "$1"',
  removeFile: 'exec rm -f -- "$1"',
  // 3: not empty or not there.
  removeEmptyFolder: 'rmdir -- "$1" 2>/dev/null || exit 3',
  // Links the finished file to its name, never over a file that appeared there meanwhile.
  publish: 'ln -- "$1" "$2" || exit 1; rm -f -- "$1"',
  // 3: not a folder.
  isFolder: '[ -d "$1" ] || exit 3',
  kill: 'kill -TERM "$1" 2>/dev/null; exit 0',
  // The nearest folder that exists: the one to be made will be on its file system.
  freeBytes: 'p=$1; while [ ! -e "$p" ]; do p=$(dirname -- "$p"); done; df -Pk -- "$p"',
};

/** The files of a qemu+ssh host, over its ssh. */
export class RemoteFiles implements BackupFiles {
  readonly remote: string;
  readonly #shell: RemoteShell;

  constructor(shell: RemoteShell) {
    this.#shell = shell;
    this.remote = shell.where;
  }

  async #sh(script: keyof typeof scripts, args: readonly string[], input?: string): Promise<{ code: number | null; stdout: string }> {
    const r = await this.#shell.run(['sh', '-c', scripts[script], 'sh', ...args], { timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) });
    if (r.code === 255) throw new StrataError('unavailable', `ssh to ${this.remote} failed: ${r.stderr.trim() || 'the connection ended'}`, { hint: "Check that the host is reachable; Strata asks for the login again if it must." });
    if (r.code !== 0 && r.code !== 3) throw new StrataError('conflict', `on ${this.remote}, ${script} of ${args.at(-1) ?? ''} failed: ${r.stderr.trim() || `exit code ${r.code}`}`);
    return { code: r.code, stdout: r.stdout };
  }

  async makeFolders(path: string): Promise<void> {
    await this.#sh('makeFolders', [path]);
  }

  async makeNewFolder(path: string): Promise<boolean> {
    return (await this.#sh('makeNewFolder', [path])).code === 0;
  }

  async subfolders(path: string): Promise<string[] | null> {
    const r = await this.#sh('subfolders', [path]);
    if (r.code === 3) return null;
    return r.stdout.split('\0').filter((n) => n !== '' && !n.startsWith('.'));
  }

  async entries(path: string): Promise<string[]> {
    return (await this.#sh('entries', [path])).stdout.split('\0').filter((n) => n !== '');
  }

  async readText(path: string): Promise<string> {
    const r = await this.#sh('readText', [path]);
    if (r.code !== 0) throw new Error(`cannot read ${path} on ${this.remote}`);
    return r.stdout;
  }

  async writeTextAtomic(path: string, text: string): Promise<void> {
    const temporary = `${dirname(path)}/.${path.slice(dirname(path).length + 1)}.${randomBytes(4).toString('hex')}.tmp`;
    await this.#sh('writeTextAtomic', [temporary, path], text);
  }

  async size(path: string): Promise<number | null> {
    const r = await this.#sh('size', [path]);
    return r.code === 3 ? null : Number(r.stdout.trim());
  }

  async removeFile(path: string): Promise<void> {
    await this.#sh('removeFile', [path]);
  }

  async removeEmptyFolder(path: string): Promise<boolean> {
    return (await this.#sh('removeEmptyFolder', [path])).code === 0;
  }

  async freeBytes(path: string): Promise<number | null> {
    try {
      const line = (await this.#sh('freeBytes', [path])).stdout.trim().split('\n').at(-1) ?? '';
      const available = Number(line.split(/\s+/)[3]);
      return Number.isFinite(available) ? available * 1024 : null;
    } catch {
      // Free space is shown, never needed: unknown is an answer.
      return null;
    }
  }

  async publish(partial: string, destination: string): Promise<void> {
    await this.#sh('publish', [partial, destination]);
  }

  async isFolder(path: string): Promise<boolean> {
    return (await this.#sh('isFolder', [path])).code === 0;
  }

  /**
   * Starts qemu-img on the host; the first line of its output is its process id there (the shell
   * prints its own, then becomes qemu-img), which `kill` ends.
   */
  startQemuImg(args: readonly string[]): ReturnType<RemoteShell['start']> {
    return this.#shell.start(['sh', '-c', 'echo "$$"; exec qemu-img "$@"', 'sh', ...args]);
  }

  async kill(pid: number): Promise<void> {
    await this.#sh('kill', [String(pid)]);
  }

  async qemuImg(args: readonly string[], timeoutMs: number): Promise<ToolRun> {
    const r = await this.#shell.run(['qemu-img', ...args], { timeoutMs });
    return { code: r.code ?? -1, stdout: r.stdout, stderr: r.code === 127 ? `qemu-img is not installed on ${this.remote}` : r.stderr };
  }
}
