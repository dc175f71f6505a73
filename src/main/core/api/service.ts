// The contract's implementation: hosts (the default one and the saved ones), domains, chains,
// previews, jobs, the practice lab and the history, behind the typed API.
import type { Result, StrataApi, ValidParams } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { EventHub } from './event-hub.ts';
import type { JobHistory } from '../storage/history.ts';
import { Host, type HostConfig } from '../hosts/host.ts';
import { HostHealth } from '../health/host-health.ts';
import { SshConnector } from '../hosts/ssh/ssh-connector.ts';
import { Backups } from '../backup/backups.ts';
import { noLimits, type SavedHosts } from '../storage/saved-hosts.ts';

export interface ServiceEnv {
  hub: EventHub;
  savedHosts: SavedHosts;
  history: JobHistory;
  labRoot: string | null;
  /** Strata's own files: no copy or new layer may be written there. */
  dataDir?: string;
  keepAliveIntervalSeconds?: number;
  discoveryIntervalMs?: number;
}

export class StrataService implements StrataApi {
  readonly #hosts = new Map<string, Host>();
  readonly #env: ServiceEnv;
  readonly #health = new HostHealth();
  readonly #ssh: SshConnector;
  readonly #backups: Backups;

  constructor(env: ServiceEnv) {
    this.#env = env;
    this.#ssh = new SshConnector(env.hub);
    this.#backups = new Backups({ hub: env.hub, dataDir: env.dataDir, hosts: () => [...this.#hosts.values()], remoteShell: (hostId, uri) => this.#ssh.shell(hostId, uri) });
    this.#backups.startSchedules();
    // A new watcher (a window, a browser tab) wants live progress: resume polling.
    env.hub.onWatch(() => {
      for (const host of this.#hosts.values()) host.wake();
    });
  }

  get hub(): EventHub {
    return this.#env.hub;
  }

  /**
   * Adds and connects a host; an unreachable one is kept, retrying, with libvirt's reason. Waits
   * for the first attempt at most `waitMs`: a remote host that hangs (ssh, a dead network) must
   * not hold up the app's start; its state arrives later as a `host` event.
   */
  async addHost(config: HostConfig, waitMs = 3000): Promise<Host> {
    if (this.#hosts.has(config.id)) throw new StrataError('conflict', `a host with id '${config.id}' exists already`);
    const host = new Host(config, {
      hub: this.#env.hub,
      ssh: this.#ssh,
      history: this.#env.history,
      settled: () => this.#backups.flush(),
      labRoot: this.#env.labRoot,
      ...(this.#env.dataDir !== undefined ? { dataDir: this.#env.dataDir } : {}),
      ...(this.#env.keepAliveIntervalSeconds !== undefined ? { keepAliveIntervalSeconds: this.#env.keepAliveIntervalSeconds } : {}),
      ...(this.#env.discoveryIntervalMs !== undefined ? { discoveryIntervalMs: this.#env.discoveryIntervalMs } : {}),
    });
    this.#hosts.set(host.id, host);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([host.start(), new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
    this.#env.hub.emit('host', host.info());
    return host;
  }

  async close(): Promise<void> {
    this.#backups.close();
    await Promise.all([...this.#hosts.values()].map((h) => h.stop()));
    this.#hosts.clear();
    await this.#ssh.close();
  }

  #host(hostId: string): Host {
    const host = this.#hosts.get(hostId);
    if (!host) {
      throw new StrataError('not-found', `no host with id '${hostId}'`, {
        hint: `Known hosts: ${[...this.#hosts.keys()].join(', ') || 'none'}.`,
      });
    }
    return host;
  }

  async 'hosts.list'(): Promise<Result<'hosts.list'>> {
    return [...this.#hosts.values()].map((h) => h.info());
  }

  async 'hosts.add'(p: ValidParams<'hosts.add'>): Promise<Result<'hosts.add'>> {
    const existing = [...this.#hosts.values()].find((h) => h.uri === p.uri && h.readOnly === p.readOnly);
    if (existing) {
      throw new StrataError('conflict', `${p.uri} is already a host ('${existing.label}')`, { hint: 'Each URI is added once.' });
    }
    const saved = await this.#env.savedHosts.add({ uri: p.uri, label: p.label ?? p.uri, readOnly: p.readOnly, limits: noLimits });
    const host = await this.addHost({ ...saved, saved: true });
    return host.info();
  }

  async 'hosts.remove'(p: ValidParams<'hosts.remove'>): Promise<Result<'hosts.remove'>> {
    const host = this.#host(p.hostId);
    if (!host.saved) throw new StrataError('conflict', `${host.label} is this run's default host and cannot be removed`);
    // Queued ones too: stopping the host drops its queue, and those jobs would never start.
    const running = host.jobs.running().length;
    const queued = host.jobs.queued().length;
    if (running + queued > 0) {
      const what = [running > 0 ? `${running} job(s) running that Strata would stop tracking` : null, queued > 0 ? `${queued} job(s) queued that would never start` : null];
      throw new StrataError('conflict', `${host.label} has ${what.filter((w) => w !== null).join(' and ')}`, {
        hint: 'Wait for them to finish, or abort them, then remove the host.',
      });
    }
    await host.stop();
    this.#hosts.delete(host.id);
    await this.#env.savedHosts.remove(host.id);
    this.#env.hub.emit('host.removed', { hostId: host.id });
    return { removed: host.id };
  }

  async 'hosts.retry'(p: ValidParams<'hosts.retry'>): Promise<Result<'hosts.retry'>> {
    return this.#host(p.hostId).retry();
  }

  async 'host.prompts'(): Promise<Result<'host.prompts'>> {
    return this.#ssh.prompts();
  }

  async 'host.answerPrompt'(p: ValidParams<'host.answerPrompt'>): Promise<Result<'host.answerPrompt'>> {
    return this.#ssh.answer(this.#host(p.hostId).id, p.promptId, p.cancel ? null : (p.answer ?? null));
  }

  async 'hosts.setLimits'(p: ValidParams<'hosts.setLimits'>): Promise<Result<'hosts.setLimits'>> {
    const host = this.#host(p.hostId);
    const limits = { maxConcurrentJobs: p.maxConcurrentJobs, bandwidthBudgetBytesPerSec: p.bandwidthBudgetBytesPerSec };
    if (host.saved) await this.#env.savedHosts.update(host.id, { limits });
    return host.setLimits(limits);
  }

  async 'domains.list'(p: ValidParams<'domains.list'>): Promise<Result<'domains.list'>> {
    return this.#host(p.hostId).listDomains();
  }

  async 'domain.get'(p: ValidParams<'domain.get'>): Promise<Result<'domain.get'>> {
    return this.#host(p.hostId).getDomain(p.domain);
  }

  async 'jobs.list'(p: ValidParams<'jobs.list'>): Promise<Result<'jobs.list'>> {
    const hosts = p.hostId === undefined ? [...this.#hosts.values()] : [this.#host(p.hostId)];
    return hosts.flatMap((h) => h.allJobs());
  }

  async 'operation.preview'(p: ValidParams<'operation.preview'>): Promise<Result<'operation.preview'>> {
    const host = this.#host(p.hostId);
    return this.#health.withPreflight(host, p.domain, p.operation, await host.preview(p.domain, p.disk, p.operation));
  }

  async 'job.start'(p: ValidParams<'job.start'>): Promise<Result<'job.start'>> {
    const host = this.#host(p.hostId);
    const preflight = () => this.#health.refuseDoomed(host, p.domain, p.operation, p.confirm, () => host.preview(p.domain, p.disk, p.operation));
    return host.startJob(p.domain, p.disk, p.operation, p.bandwidthBytesPerSec, p.confirm, p.whenBusy, preflight);
  }

  async 'job.pivot'(p: ValidParams<'job.pivot'>): Promise<Result<'job.pivot'>> {
    return this.#host(p.hostId).pivot(p.domain, p.disk);
  }

  async 'job.setSpeed'(p: ValidParams<'job.setSpeed'>): Promise<Result<'job.setSpeed'>> {
    return this.#host(p.hostId).setSpeed(p.domain, p.disk, p.bandwidthBytesPerSec);
  }

  async 'job.abort'(p: ValidParams<'job.abort'>): Promise<Result<'job.abort'>> {
    return this.#host(p.hostId).abort(p.domain, p.disk);
  }

  async 'job.removeLeftover'(p: ValidParams<'job.removeLeftover'>): Promise<Result<'job.removeLeftover'>> {
    return this.#host(p.hostId).removeLeftover(p.jobId, p.confirm);
  }

  async 'disk.snapshot'(p: ValidParams<'disk.snapshot'>): Promise<Result<'disk.snapshot'>> {
    const named = p.name === undefined ? undefined : { name: p.name, description: p.description };
    return this.#host(p.hostId).snapshot(p.domain, p.disk, p.destination, named);
  }

  async 'revert.preview'(p: ValidParams<'revert.preview'>): Promise<Result<'revert.preview'>> {
    return this.#host(p.hostId).layers.revertPreview(p.domain, p.disk, p.layer, p.deleteFiles);
  }

  async 'disk.revert'(p: ValidParams<'disk.revert'>): Promise<Result<'disk.revert'>> {
    return this.#host(p.hostId).layers.revert(p.domain, p.disk, p.layer, p.deleteFiles, p.confirm);
  }

  async 'disk.grow'(p: ValidParams<'disk.grow'>): Promise<Result<'disk.grow'>> {
    return this.#host(p.hostId).layers.grow(p.domain, p.disk, p.bytes);
  }

  async 'chain.check'(p: ValidParams<'chain.check'>): Promise<Result<'chain.check'>> {
    const host = this.#host(p.hostId);
    return this.#health.check(host, await host.getDomain(p.domain), p.disk);
  }

  async 'hosts.setSpaceGuard'(p: ValidParams<'hosts.setSpaceGuard'>): Promise<Result<'hosts.setSpaceGuard'>> {
    const host = this.#host(p.hostId);
    const spaceGuard = { minFreeBytes: p.minFreeBytes, minFreePercent: p.minFreePercent, action: p.action };
    if (host.saved) await this.#env.savedHosts.update(host.id, { spaceGuard });
    host.spaceGuard.setSettings(spaceGuard);
    this.#env.hub.emit('host', host.info());
    return host.info();
  }

  async 'domain.ioPause'(p: ValidParams<'domain.ioPause'>): Promise<Result<'domain.ioPause'>> {
    return this.#host(p.hostId).spaceGuard.ioPause(p.domain);
  }

  async 'domain.resume'(p: ValidParams<'domain.resume'>): Promise<Result<'domain.resume'>> {
    return this.#host(p.hostId).spaceGuard.resume(p.domain);
  }

  async 'host.capabilities'(p: ValidParams<'host.capabilities'>): Promise<Result<'host.capabilities'>> {
    return this.#health.capabilities(this.#host(p.hostId));
  }

  async 'lab.create'(p: ValidParams<'lab.create'>): Promise<Result<'lab.create'>> {
    return this.#host(p.hostId).createLab();
  }

  async 'lab.remove'(p: ValidParams<'lab.remove'>): Promise<Result<'lab.remove'>> {
    return this.#host(p.hostId).removeLab(p.domain);
  }

  async 'history.list'(): Promise<Result<'history.list'>> {
    return this.#env.history.list();
  }

  async 'history.export'(): Promise<Result<'history.export'>> {
    return this.#env.history.export();
  }

  async 'backup.preview'(p: ValidParams<'backup.preview'>): Promise<Result<'backup.preview'>> {
    return this.#backups.plan(this.#host(p.hostId), p);
  }

  async 'backup.start'(p: ValidParams<'backup.start'>): Promise<Result<'backup.start'>> {
    return this.#backups.start(this.#host(p.hostId), p);
  }

  async 'backup.list'(p: ValidParams<'backup.list'>): Promise<Result<'backup.list'>> {
    return this.#backups.list(this.#host(p.hostId), p.domain);
  }

  async 'backup.restorePreview'(p: ValidParams<'backup.restorePreview'>): Promise<Result<'backup.restorePreview'>> {
    return this.#backups.restorePreview(this.#host(p.hostId), p);
  }

  async 'backup.restore'(p: ValidParams<'backup.restore'>): Promise<Result<'backup.restore'>> {
    return this.#backups.restore(this.#host(p.hostId), p);
  }

  async 'backup.verify'(p: ValidParams<'backup.verify'>): Promise<Result<'backup.verify'>> {
    return this.#backups.verify(this.#host(p.hostId), p);
  }

  async 'backup.remove'(p: ValidParams<'backup.remove'>): Promise<Result<'backup.remove'>> {
    return this.#backups.remove(this.#host(p.hostId), p);
  }

  async 'backup.setLocation'(p: ValidParams<'backup.setLocation'>): Promise<Result<'backup.setLocation'>> {
    return this.#backups.setLocation(this.#host(p.hostId), p.path);
  }

  async 'backup.settings'(p: ValidParams<'backup.settings'>): Promise<Result<'backup.settings'>> {
    return this.#backups.settings(this.#host(p.hostId), p.domain);
  }

  async 'backup.setSchedule'(p: ValidParams<'backup.setSchedule'>): Promise<Result<'backup.setSchedule'>> {
    return this.#backups.setSchedule(this.#host(p.hostId), p);
  }

  async 'backup.setRetention'(p: ValidParams<'backup.setRetention'>): Promise<Result<'backup.setRetention'>> {
    return this.#backups.setRetention(this.#host(p.hostId), p);
  }
}
