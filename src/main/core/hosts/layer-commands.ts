// A host's commands that change a disk's chain without a block job (revert, grow) and the upkeep
// of libvirt's named snapshots after a job changed a chain. Host wires them to its connection,
// jobs and chain index; the work itself is in chains/revert.ts, offline/grow.ts and
// chains/snapshot-upkeep.ts.
import type { GrowResult, RevertPreview, RevertResult } from '../../../shared/layers.ts';
import type { Disk, SharedLayerUse } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { log } from '../../log/logger.ts';
import { parseDomainXml } from '../chains/domain-xml.ts';
import { previewRevert, revertToLayer, type RevertContext } from '../chains/revert.ts';
import { forgetRemovedSnapshots } from '../chains/snapshot-upkeep.ts';
import { definedSource } from '../offline/domain-definition.ts';
import { growDisk } from '../offline/grow.ts';
import { readImageChain } from '../offline/image-tool.ts';

export interface LayerCommandsDeps {
  hostId: string;
  /** The images are on this machine. */
  local: boolean;
  conn(): LibvirtConnection;
  /** A job holds the disk now. */
  busy(domain: string, target: string): boolean;
  sharedWith(domain: string, written: readonly string[], deleted: readonly string[]): SharedLayerUse[];
  /** The disk as domain.get shows it, after a change. */
  disk(domain: string, target: string): Promise<Disk>;
  domainChanged(domain: string): void;
  refuseReadOnly(): void;
}

export class LayerCommands {
  readonly #deps: LayerCommandsDeps;

  constructor(deps: LayerCommandsDeps) {
    this.#deps = deps;
  }

  #revertContext(domain: string, target: string): RevertContext {
    return {
      conn: this.#deps.conn(),
      local: this.#deps.local,
      busy: this.#deps.busy(domain, target),
      sharedWith: (written, deleted) => this.#deps.sharedWith(domain, written, deleted),
    };
  }

  revertPreview(domain: string, target: string, layer: string, deleteFiles: boolean): Promise<RevertPreview> {
    return previewRevert(this.#revertContext(domain, target), domain, target, layer, deleteFiles);
  }

  async revert(domain: string, target: string, layer: string, deleteFiles: boolean, confirm: readonly string[]): Promise<RevertResult> {
    this.#deps.refuseReadOnly();
    const done = await revertToLayer(this.#revertContext(domain, target), domain, target, layer, deleteFiles, confirm);
    this.#deps.domainChanged(domain);
    return { ...done, disk: await this.#deps.disk(domain, target) };
  }

  async grow(domain: string, target: string, bytes: number): Promise<GrowResult> {
    this.#deps.refuseReadOnly();
    const conn = this.#deps.conn();
    const done = await growDisk({ conn, local: this.#deps.local, busy: this.#deps.busy(domain, target) }, domain, target, bytes);
    this.#deps.domainChanged(domain);
    return { ...done, disk: await this.#deps.disk(domain, target) };
  }

  /**
   * A job changed `target`'s chain, which held `before` (active first): the named snapshots whose
   * records name a layer no longer in it lose their metadata, as the job's preview said. The chain
   * is read again rather than taken from the job's plan, so a job that ended otherwise than
   * planned removes nothing it did not remove.
   */
  async afterJob(domain: string, target: string, before: readonly string[]): Promise<void> {
    try {
      const now = await this.#chainNow(domain, target);
      if (!now) return;
      const fates = await forgetRemovedSnapshots(this.#deps.conn(), domain, target, before, now);
      if (fates.some((f) => f.fate === 'metadata-deleted')) this.#deps.domainChanged(domain);
    } catch (err) {
      log.warn("named snapshots could not be checked after a job; libvirt's list may name layers that left the chain", { host: this.#deps.hostId, domain, disk: target, err });
    }
  }

  async #chainNow(domain: string, target: string): Promise<string[] | null> {
    const conn = this.#deps.conn();
    const state = await conn.domainState(domain);
    if (state !== 'shutoff') {
      const disk = parseDomainXml(await conn.domainXml(domain)).disks.find((d) => d.target === target);
      return disk ? disk.chain.map((l) => l.path) : null;
    }
    // A shut-off domain's definition names only the active image; the rest is in its headers.
    if (!this.#deps.local) return null;
    const source = definedSource(await conn.domainXml(domain, { inactive: true, secure: true }), target);
    return source.path ? (await readImageChain(source.path)).map((l) => l.path) : null;
  }
}
