// The image a Strata copy created and left unused when it failed or was cancelled (a full
// filesystem leaves a partial copy). Noted when the job ends; removed only when asked, with the
// 'delete-files' confirmation, and only while it is still the very file the copy made, no domain
// of the host uses it, and no later copy has written into it.
import { lstatSync, statSync, unlinkSync, type Stats } from 'node:fs';
import type { Confirmation, Job, Leftover } from '../../../shared/model.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { log } from '../../log/logger.ts';
import { parseDomainXml } from '../chains/domain-xml.ts';
import type { JobHistory } from '../storage/history.ts';
import type { JobTracker } from './job-tracker.ts';

const fileId = (st: Stats): string => `${st.dev}:${st.ino}`;

function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * What a copy that ended without being taken on left at `path`: null when nothing is there (libvirt
 * removes the file of a copy that could not start) or when it is not a plain file. On a remote
 * host the file cannot be looked at, and is named without size or identity.
 */
export function noteLeftover(path: string, partial: boolean, local: boolean): Leftover | null {
  if (!local) return { path, partial, bytes: null, fileId: null, status: 'left' };
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (err) {
    log.debug('a copy ended with no file at its destination; nothing is left to remove', { path, err });
    return null;
  }
  if (!st.isFile()) return null;
  return { path, partial, bytes: st.blocks * 512, fileId: fileId(st), status: 'left' };
}

export interface LeftoverDeps {
  hostId: string;
  label: string;
  local: boolean;
  history: JobHistory;
  jobs: JobTracker;
  /** Runs a libvirt call on the host's connection, its errors made Strata's. */
  call<T>(action: string, fn: (c: LibvirtConnection) => Promise<T>): Promise<T>;
}

export class Leftovers {
  readonly #deps: LeftoverDeps;
  /** Paths a copy is being started into: not removable while libvirt opens them. */
  readonly #claimed = new Set<string>();

  constructor(deps: LeftoverDeps) {
    this.#deps = deps;
  }

  /**
   * A copy is being started into an existing file (reuseExisting): until libvirt has answered,
   * the file is not removed under it. Returns the release, for when the start failed.
   */
  claim(path: string): () => void {
    this.#claimed.add(path);
    return () => this.#claimed.delete(path);
  }

  /**
   * A copy started into an existing file: a leftover at that path now belongs to it, and the
   * earlier job no longer offers to remove it.
   */
  async reused(path: string): Promise<void> {
    for (const job of this.#deps.history.list()) {
      if (job.hostId === this.#deps.hostId && job.leftover?.path === path && job.leftover.status === 'left') {
        await this.#amend(job, 'reused');
      }
    }
  }

  async remove(jobId: string, confirm: readonly Confirmation[]): Promise<Job> {
    const job = this.#job(jobId);
    const left = this.#removable(job);
    if (!confirm.includes('delete-files')) {
      throw new StrataError('conflict', `Not removed: this deletes ${left.path}${left.bytes === null ? '' : ` (${left.bytes} bytes on disk)`}, which the ${job.disk} copy of ${job.domain} left.`, {
        hint: 'Send the request again with confirm: ["delete-files"].',
      });
    }
    const user = await this.#domainUsing(left);
    if (user !== null) {
      throw new StrataError('conflict', `${left.path} is used by ${user} on ${this.#deps.label}: Strata does not remove an image a domain uses`, {
        hint: 'If the file should go, take it out of that domain first.',
      });
    }
    // The domains were read asynchronously: a copy may have taken the file on meanwhile. From here
    // to the unlink nothing yields, so no request can slip in between.
    const latest = this.#job(jobId);
    const current = this.#removable(latest);
    const gone = this.#unlink(current);
    log.info(gone ? 'a leftover copy was already gone' : 'removed a leftover copy', { host: this.#deps.hostId, job: jobId, path: current.path });
    return this.#amend(latest, 'removed');
  }

  #job(jobId: string): Job {
    const job = this.#deps.history.find(jobId);
    if (!job || job.hostId !== this.#deps.hostId) {
      throw new StrataError('not-found', `no ended job '${jobId}' on ${this.#deps.label}`, {
        hint: "The jobs view's history lists ended jobs; a copy that left a file offers its removal there.",
      });
    }
    return job;
  }

  #removable(job: Job): Leftover {
    const left = job.leftover;
    if (!left) {
      throw new StrataError('conflict', `the ${job.type} job on ${job.domain}/${job.disk} left no file of its own behind`, {
        hint: 'Only a copy Strata started into a new file, which then failed or was cancelled, leaves a file to remove.',
      });
    }
    if (left.status === 'removed') throw new StrataError('conflict', `${left.path} was removed already`);
    if (this.#claimed.has(left.path)) {
      throw new StrataError('conflict', `a copy is being started into ${left.path}: Strata leaves it alone`, {
        hint: 'Wait for that copy; if it fails to start, the file can be removed then.',
      });
    }
    if (left.status === 'reused') {
      throw new StrataError('conflict', `${left.path} was written into by a later copy, which owns it now: Strata leaves it alone`, {
        hint: 'Remove it yourself if that copy is not needed either.',
      });
    }
    if (left.fileId === null || !this.#deps.local) {
      throw new StrataError('conflict', `${left.path} is on ${this.#deps.label}, a remote host: Strata removes files only on this machine`, {
        hint: `Remove it on that host once you are sure no disk uses it (for example: ssh to it and rm ${left.path}).`,
      });
    }
    return left;
  }

  /** Removes the file if it is the one the copy left; true when it was gone already. */
  #unlink(left: Leftover): boolean {
    let st: Stats;
    try {
      st = lstatSync(left.path);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return true;
      throw this.#fsError(left.path, 'look at', err);
    }
    if (!st.isFile() || fileId(st) !== left.fileId) {
      throw new StrataError('conflict', `${left.path} is not the file the copy left: it was replaced since, and Strata removes only what its copy made`, {
        hint: 'Check what the file is now; remove it yourself if it is not needed.',
      });
    }
    try {
      unlinkSync(left.path);
    } catch (err) {
      throw this.#fsError(left.path, 'remove', err);
    }
    return false;
  }

  #fsError(path: string, verb: string, err: unknown): StrataError {
    const code = errnoOf(err);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      return new StrataError('conflict', `Strata may not ${verb} ${path} (${code}): libvirt made the file as another user`, {
        hint: `Remove it as its owner, or as root: sudo rm ${path}`,
        cause: err,
      });
    }
    return new StrataError('internal', `Could not ${verb} ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }

  /**
   * The domain whose disks use the file, from every domain's live and persistent definitions: a
   * chain layer or a mirror's destination, by path or (for links and other names) by identity.
   */
  async #domainUsing(left: Leftover): Promise<string | null> {
    const domains = await this.#deps.call('list the domains', (c) => c.listDomains());
    for (const domain of domains) {
      for (const inactive of domain.active ? [false, true] : [true]) {
        let xml: string;
        try {
          xml = await this.#deps.call(`read ${domain.name}`, (c) => c.domainXml(domain.name, { inactive }));
        } catch (err) {
          // A transient domain that ended after the listing uses nothing any more.
          if (err instanceof StrataError && err.kind === 'not-found') continue;
          throw err;
        }
        const parsed = parseDomainXml(xml);
        const paths = [...parsed.disks.flatMap((d) => d.chain.map((l) => l.path)), ...[...parsed.mirrors.values()].flatMap((m) => (m.path ? [m.path] : []))];
        if (paths.some((p) => p === left.path || sameFile(p, left.fileId))) return domain.name;
      }
    }
    return null;
  }

  async #amend(job: Job, status: Leftover['status']): Promise<Job> {
    if (!job.leftover) return job;
    const amended: Job = { ...job, leftover: { ...job.leftover, status }, updatedAt: Date.now() };
    await this.#deps.jobs.amend(amended);
    return amended;
  }
}

function sameFile(path: string, id: string | null): boolean {
  if (id === null || !path.startsWith('/')) return false;
  try {
    return fileId(statSync(path)) === id;
  } catch {
    // A layer that cannot be looked at here (missing, or behind a folder Strata may not enter)
    // cannot be the leftover, which Strata could look at when its copy ended.
    return false;
  }
}
