// One libvirt host: its connection, its domains and disks, and the operations Strata runs there.
// Every operation is previewed first and refused with a reason when it would lose data
// unconfirmed, hit a busy disk, or go to a read-only connection; what happens to jobs is the
// JobRunner's (core/jobs).
import type { JobOperation, Operation } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { ChainPreview, Confirmation, Disk, DomainDetail, DomainState, DomainSummary, HostInfo, HostLimits, Job, JobEvent, SharedLayerUse } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { toStrataError } from '../../libvirt/errors.ts';
import { log } from '../../log/logger.ts';
import { ChainIndex } from '../chains/chain-index.ts';
import { DomainModel } from '../chains/domain-model.ts';
import { readDomain, readKnown } from '../chains/domain-reader.ts';
import { parseDomainXml } from '../chains/domain-xml.ts';
import { previewOperation } from '../chains/preview.ts';
import { JobDiscovery } from '../jobs/discovery.ts';
import { JobRunner } from '../jobs/job-runner.ts';
import type { JobTracker } from '../jobs/job-tracker.ts';
import { createPracticeLab, removePracticeLab } from '../lab/practice-lab.ts';
import { checkSnapshotDestination, isLocalUri, type DestinationRules } from './destinations.ts';
import { HostConnection } from './host-connection.ts';
import { SpaceGuard } from '../health/space-guard.ts';
import { defaultSpaceGuard } from '../../../shared/space-guard.ts';
import { offlineSetup, withEngine, withOffline } from './host-offline.ts';
import { LayerCommands } from './layer-commands.ts';
import { snapshotSource } from '../chains/snapshot-upkeep.ts';
import { namedSnapshotXml, readSnapshotLayers, snapshotFates } from '../chains/snapshots.ts';
import type { HostConfig, HostEnv } from './host-config.ts';

export type { HostConfig, HostEnv } from './host-config.ts';

export class Host {
  readonly id: string;
  readonly uri: string;
  readonly label: string;
  readonly readOnly: boolean;
  readonly saved: boolean;
  readonly #env: HostEnv;
  readonly #connection: HostConnection;
  readonly #runner: JobRunner;
  readonly #discovery: JobDiscovery;
  readonly #chains = new ChainIndex();
  readonly #guard: SpaceGuard;
  readonly #model: DomainModel;
  /** The offline jobs a previous run left, looked for once, at the first connection. */
  #recovered: Promise<number> | null = null;
  /** Revert, grow, and the named snapshots' upkeep after a job. */
  readonly layers: LayerCommands;

  constructor(config: HostConfig, env: HostEnv) {
    this.id = config.id;
    this.uri = config.uri;
    this.label = config.label;
    this.readOnly = config.readOnly;
    this.saved = config.saved;
    this.#env = env;
    this.#guard = new SpaceGuard({
      hostId: this.id,
      local: isLocalUri(this.uri),
      settings: config.spaceGuard ?? defaultSpaceGuard,
      conn: () => this.#connection.current,
      note: (domain, disk, note) => this.jobs.guardNote(domain, disk, note),
      setSpeed: (domain, disk, bps) => this.setSpeed(domain, disk, bps),
      abort: (domain, disk) => this.abort(domain, disk),
      domain: (name) => this.getDomain(name),
      ioPause: (pause) => env.hub.emit('domain.ioPause', pause),
    });
    this.#runner = new JobRunner({
      hostId: this.id,
      label: this.label,
      local: isLocalUri(this.uri),
      limits: config.limits,
      history: env.history,
      emit: (event) => this.#jobEvent(event),
      domainChanged: (domain) => this.#changed(domain),
      chainChanged: (job, chains) => void this.layers.afterJob(job.domain, job.disk, chains.before),
      watched: () => env.hub.watched,
      conn: () => this.#conn(),
      call: (action, fn) => this.#call(action, fn),
      disk: (domain, target) => this.#disk(domain, target),
      preview: (domain, disk, op) => this.#preview(domain, disk, op),
      destinationRules: () => this.#destinationRules(),
      ...offlineSetup(this.uri, env.dataDir, () => this.#conn()),
    });
    this.layers = new LayerCommands({
      hostId: this.id,
      local: isLocalUri(this.uri),
      conn: () => this.#conn(),
      busy: (domain, target) => this.jobs.active(domain, target) !== undefined,
      sharedWith: (domain, written, deleted) => this.#chains.othersUsing(domain, written, deleted),
      disk: async (domain, target) => (await this.#disk(domain, target, true)).disk,
      domainChanged: (domain) => this.#changed(domain),
      refuseReadOnly: () => this.#refuseReadOnly(),
    });
    this.#connection = new HostConnection({
      uri: this.uri,
      readOnly: this.readOnly,
      keepAliveIntervalSeconds: env.keepAliveIntervalSeconds ?? 5,
      ...(env.ssh ? { open: () => env.ssh!.open({ hostId: this.id, uri: this.uri, readOnly: this.readOnly, retry: () => void this.retry() }) } : {}),
      state: () => env.hub.emit('host', this.info()),
      blockJob: (n) => this.#runner.jobs.notice(n),
      lifecycle: (domain) => {
        void this.#guard.lifecycle(domain);
        this.#changed(domain);
        this.#discovery.refresh().catch((err: unknown) => {
          log.debug('refresh after a lifecycle event failed; the next event or reconnect reads again', { host: this.id, domain, err });
        });
      },
      connected: async (conn) => {
        // Together: the reconcile's reading starts at once, so a reader that heard 'connected' waits for it instead of reading too.
        await Promise.all([this.#guard.attach(conn), this.#discovery.reconcile(conn)]);
        this.#recovered ??= this.#runner.recoverOffline().catch((err: unknown) => {
          log.warn('the offline jobs a previous run left could not be read', { host: this.id, err });
          return 0;
        });
        await this.#runner.pump();
      },
    });
    const intervalMs = env.discoveryIntervalMs ?? 500;
    const read = (name: string, state: DomainState | null) => readKnown(this.#conn(), name, state, (action, fn) => this.#call(action, fn));
    this.#model = new DomainModel({ list: () => this.#call('list the domains', (c) => c.listDomains()), read, chains: this.#chains, trustMs: intervalMs });
    this.#discovery = new JobDiscovery({
      jobs: this.jobs,
      model: this.#model,
      connection: () => this.#connection.current,
      changed: (domain) => this.#changed(domain),
      watched: () => env.hub.watched,
      intervalMs,
    });
  }

  /** The model forgets `domain` before anyone hears it changed. */
  #changed(domain: string): void {
    this.#model.invalidate(domain);
    this.#env.hub.emit('domain.changed', { hostId: this.id, domain });
  }

  /** Watches the room where running jobs write, and guests paused on a full disk (health/space-guard.ts). */
  get spaceGuard(): SpaceGuard {
    return this.#guard;
  }

  #jobEvent(event: JobEvent): void {
    if (event.transition !== 'progress') this.#model.invalidate(event.domain);
    this.#env.hub.emit('job', event);
    this.#guard.job(event);
  }

  /** The host's jobs, as they are now. */
  get jobs(): JobTracker {
    return this.#runner.jobs;
  }

  /** Resolves once the offline jobs a previous Strata left here are in the job model; null before the first connection. */
  get offlineRecovered(): Promise<number> | null {
    return this.#recovered;
  }

  // Jobs of Strata's own (core/backup): a restore or a shut-off domain's backup by the offline
  // engine, and a remote host's restore by qemu-img there over SSH.
  startOfflineOwn(...args: Parameters<JobRunner['startOfflineOwn']>): Promise<Job> {
    return this.#runner.startOfflineOwn(...args);
  }
  startOwn(...args: Parameters<JobRunner['startOwn']>): Promise<Job> {
    return this.#runner.startOwn(...args);
  }

  /** The other domains that use any of `paths` (so deleting them would break those domains). */
  othersUsing(domain: string, paths: readonly string[]): SharedLayerUse[] {
    return this.#chains.othersUsing(domain, [], paths);
  }

  info(): HostInfo {
    return {
      id: this.id,
      uri: this.uri,
      label: this.label,
      readOnly: this.readOnly,
      saved: this.saved,
      state: this.#connection.state,
      reason: this.#connection.reason,
      hint: this.#connection.hint,
      retryAt: this.#connection.retryAt,
      access: this.#connection.access,
      limits: this.#runner.limits,
      spaceGuard: this.#guard.settings,
    };
  }

  start(): Promise<void> {
    return this.#connection.start();
  }

  /** Connects now instead of waiting for the user's fix to be noticed or the backoff to end. */
  async retry(): Promise<HostInfo> {
    await this.#connection.retryNow();
    return this.info();
  }

  async stop(): Promise<void> {
    this.#discovery.stop();
    // Before the links go: a remote restore's file is removed, and a dropped backup's point written, through them.
    await this.#runner.close();
    await this.#env.settled?.();
    this.#guard.dispose();
    // First: the connection's stop waits for an attempt, which may wait in ssh for the user.
    this.#env.ssh?.stop(this.id);
    await this.#connection.stop();
  }

  /** Someone started watching: resume progress polling and the search for outside jobs. */
  wake(): void {
    this.jobs.wake();
    this.#discovery.schedule();
  }

  async setLimits(limits: HostLimits): Promise<HostInfo> {
    await this.#runner.setLimits(limits, () => this.#env.hub.emit('host', this.info()));
    return this.info();
  }

  allJobs(): Job[] {
    return this.jobs.list();
  }

  async listDomains(): Promise<DomainSummary[]> {
    const domains = await this.#model.listing();
    return domains.map(({ name, uuid, state }) => ({ name, uuid, state })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The domain with its chains and, while it runs, every layer's sizes; from the model while it is trusted (operations read afresh). */
  getDomain(name: string): Promise<DomainDetail> {
    return this.#readDomain(name, true, false);
  }

  // Sizes cost a stats call; only what shows them (the domain view, a preview's estimate) asks.
  async #readDomain(name: string, sizes: boolean, afresh = true): Promise<DomainDetail> {
    // No stats call on a domain with a job running: QEMU 7.2 can crash reading them as the job ends.
    // Nor on libvirt's test driver, which reports no layer sizes (a call per domain for nothing).
    const sizeless = this.jobs.running().some((j) => j.domain === name) || this.uri.startsWith('test:');
    const model = { known: await (afresh ? this.#model.read(name) : this.#model.known(name)), stats: sizeless ? [] : null };
    // What shows sizes (the domain view, a preview) shows the layers' snapshots too (images of the test driver exist nowhere).
    const localImages = isLocalUri(this.uri) && !this.uri.startsWith('test:');
    const snapshots = sizes ? { snapshots: { source: snapshotSource(this.#conn(), afresh ? undefined : this.#model), localImages } } : {};
    const detail = await readDomain(this.#conn(), name, { sizes, ...withOffline(this.uri, name), ...snapshots }, (action, fn) => this.#call(action, fn), model);
    this.#chains.set(name, detail.disks);
    return detail;
  }

  async #disk(domain: string, target: string, sizes = false): Promise<{ detail: DomainDetail; disk: Disk }> {
    const detail = await this.#readDomain(domain, sizes);
    const disk = detail.disks.find((d) => d.target === target);
    if (!disk) {
      throw new StrataError('not-found', `${domain} has no disk '${target}'`, {
        hint: `Its disks are: ${detail.disks.map((d) => d.target).join(', ') || 'none'}.`,
      });
    }
    return { detail, disk };
  }

  /** The preview with what only the host knows: the other domains that share a changed layer. */
  #preview(domain: string, disk: Disk, op: Operation): ChainPreview {
    const preview = previewOperation(disk, op);
    const sharedWith = this.#chains.sharedWith(domain, disk, op, preview);
    return { ...preview, sharedWith, needs: sharedWith.length > 0 ? [...preview.needs, 'shared-layers'] : preview.needs };
  }

  async preview(domain: string, target: string, op: Operation): Promise<ChainPreview> {
    const { detail, disk } = await this.#disk(domain, target, true);
    return withEngine(this.uri, detail.state, op, await this.#withNamedSnapshots(domain, disk, this.#preview(domain, disk, op)));
  }

  /** What happens to each libvirt snapshot whose layers the operation removes (see snapshotFates). */
  async #withNamedSnapshots(domain: string, disk: Disk, preview: ChainPreview): Promise<ChainPreview> {
    if (!disk.chain.some((l) => l.snapshot)) return preview;
    const kept = new Set(preview.after.map((l) => l.path));
    const removed = new Set(disk.chain.map((l) => l.path).filter((p) => !kept.has(p)));
    if (removed.size === 0) return preview;
    const named = await readSnapshotLayers(snapshotSource(this.#conn()), domain).catch(() => []);
    return { ...preview, namedSnapshots: snapshotFates(disk.target, disk.chain.map((l) => l.path), named, removed) };
  }

  startJob(
    domain: string,
    target: string,
    op: JobOperation,
    requested: number,
    confirm: readonly Confirmation[],
    whenBusy: 'refuse' | 'queue',
    preflight?: () => Promise<void>,
  ): Promise<Job> {
    this.#refuseReadOnly();
    // The space guard watches the job by what was asked for: which layer it grows.
    this.#guard.expect(domain, target, op);
    return this.#runner.start(domain, target, op, requested, confirm, whenBusy, preflight).finally(() => this.#guard.settled(domain, target));
  }

  pivot(domain: string, disk: string): Promise<Job> {
    this.#refuseReadOnly();
    return this.#runner.pivot(domain, disk, async () => {
      const xml = await this.#call(`read ${domain}`, (c) => c.domainXml(domain));
      return parseDomainXml(xml).mirrors.get(disk)?.ready === true;
    });
  }

  abort(domain: string, disk: string): Promise<Job> {
    this.#refuseReadOnly();
    return this.#runner.abort(domain, disk);
  }

  setSpeed(domain: string, disk: string, requested: number): Promise<Job> {
    this.#refuseReadOnly();
    return this.#runner.setSpeed(domain, disk, requested);
  }

  #destinationRules(): DestinationRules {
    return { dataDir: this.#env.dataDir, labRoot: this.#env.labRoot };
  }

  /** A new layer; with `named`, libvirt keeps it as a named snapshot (virsh snapshot-list, virt-manager). */
  async snapshot(domain: string, target: string, destination: string | undefined, named?: { name: string; description?: string | undefined }): Promise<Disk> {
    this.#refuseReadOnly();
    const { detail, disk } = await this.#disk(domain, target);
    if (this.jobs.active(domain, target)) throw new StrataError('conflict', `${domain}/${target} has a block job running: snapshot it afterwards`);
    const preview = previewOperation(disk, { kind: 'snapshot', ...(destination ? { destination } : {}) });
    const path = preview.created?.path;
    if (!path) throw new StrataError('internal', 'the snapshot preview names no new layer');
    if (isLocalUri(this.uri)) checkSnapshotDestination(path, this.#destinationRules());
    const others = detail.disks.filter((d) => d.target !== target && d.chain.length > 0).map((d) => d.target);
    await this.#call(`add a layer to ${domain}/${target}`, async (c) => {
      if (named) await c.snapshotCreateXML(domain, namedSnapshotXml(target, path, others, named.name, named.description), { diskOnly: true, atomic: true });
      else await c.snapshotDisk(domain, target, path, others);
    });
    this.#changed(domain);
    return (await this.#disk(domain, target, true)).disk;
  }

  async createLab(): Promise<DomainDetail> {
    this.#refuseReadOnly();
    const root = this.#env.labRoot;
    if (!root || !isLocalUri(this.uri)) {
      throw new StrataError('conflict', `practice labs are made on this machine only; ${this.label} is remote`, {
        hint: 'Add a local host (qemu:///system or qemu:///session) to make a lab.',
      });
    }
    const name = await this.#call('create a practice lab', (c) => createPracticeLab(c, root));
    await this.#discovery.refresh();
    this.#changed(name);
    return this.getDomain(name);
  }

  async removeLab(domain: string): Promise<{ removed: string }> {
    this.#refuseReadOnly();
    const root = this.#env.labRoot;
    if (!root) throw new StrataError('conflict', 'practice labs are not available in this run');
    await this.#call(`remove the practice lab ${domain}`, (c) => removePracticeLab(c, root, domain));
    this.#changed(domain);
    return { removed: domain };
  }

  #refuseReadOnly(): void {
    if (this.readOnly) {
      throw new StrataError('conflict', `${this.label} is connected read-only: Strata can watch its jobs but not start or steer them`, {
        hint: 'Add the host again without read-only to run jobs on it.',
      });
    }
  }

  /** Removes the file a failed or cancelled copy left, once confirmed (see jobs/leftovers.ts). */
  removeLeftover(jobId: string, confirm: readonly Confirmation[]): Promise<Job> {
    this.#refuseReadOnly();
    return this.#runner.removeLeftover(jobId, confirm);
  }

  /** The open libvirt connection, or null while there is none (the health checks read capabilities on it). */
  get libvirt(): LibvirtConnection | null {
    return this.#connection.current;
  }

  #conn(): LibvirtConnection {
    const conn = this.#connection.current;
    if (!conn) {
      const reason = this.#connection.reason;
      throw new StrataError('unavailable', `${this.label} is not connected${reason ? `: ${reason}` : ''}`, {
        hint: this.#connection.access ? this.#connection.hint : 'Strata keeps retrying; check that libvirtd is running and the URI is right.',
      });
    }
    return conn;
  }

  async #call<T>(action: string, fn: (c: LibvirtConnection) => Promise<T>): Promise<T> {
    const conn = this.#conn();
    try {
      return await fn(conn);
    } catch (err) {
      throw toStrataError(err, `Could not ${action}`);
    }
  }
}
