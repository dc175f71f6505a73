// The contract's implementation: hosts, domains and jobs behind the typed API.
import type { Result, StrataApi, ValidParams } from '../../shared/contract.ts';
import { StrataError } from '../../shared/errors.ts';
import type { EventHub } from './event-hub.ts';
import { Host } from './host.ts';

export class StrataService implements StrataApi {
  readonly #hosts = new Map<string, Host>();

  constructor(readonly hub: EventHub) {
    // A new watcher (a window, a browser tab) wants live progress: resume polling.
    hub.onWatch(() => {
      for (const host of this.#hosts.values()) host.jobs.wake();
    });
  }

  async addHost(options: { id: string; uri: string; label?: string }): Promise<Host> {
    if (this.#hosts.has(options.id)) throw new StrataError('conflict', `a host with id '${options.id}' exists already`);
    const host = new Host(options, this.hub);
    this.#hosts.set(host.id, host);
    await host.start();
    return host;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#hosts.values()].map((h) => h.stop()));
    this.#hosts.clear();
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

  async 'domains.list'(p: ValidParams<'domains.list'>): Promise<Result<'domains.list'>> {
    return this.#host(p.hostId).listDomains();
  }

  async 'domain.get'(p: ValidParams<'domain.get'>): Promise<Result<'domain.get'>> {
    return this.#host(p.hostId).getDomain(p.domain);
  }

  async 'jobs.list'(p: ValidParams<'jobs.list'>): Promise<Result<'jobs.list'>> {
    return this.#host(p.hostId).jobs.list();
  }

  async 'job.pull'(p: ValidParams<'job.pull'>): Promise<Result<'job.pull'>> {
    return this.#host(p.hostId).pull(p.domain, p.disk, p.bandwidthBytesPerSec);
  }

  async 'job.setSpeed'(p: ValidParams<'job.setSpeed'>): Promise<Result<'job.setSpeed'>> {
    return this.#host(p.hostId).setSpeed(p.domain, p.disk, p.bandwidthBytesPerSec);
  }

  async 'job.abort'(p: ValidParams<'job.abort'>): Promise<Result<'job.abort'>> {
    return this.#host(p.hostId).abort(p.domain, p.disk);
  }
}
