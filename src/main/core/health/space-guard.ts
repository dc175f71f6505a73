// The space guard of one host: while a job grows a layer (a commit's base, a pull's active layer,
// a copy's destination), it watches the free space of the file system that holds it, and before
// that file system is full it warns, then throttles the job to 1 byte/s or aborts it, as the
// host's settings say. libvirt's block-threshold event on the growing layer (`vda[3]`) tells it
// at once when the layer has used the room it was given; a statfs each second covers the rest
// (other writers on the file system, a copy's destination, on which libvirt 9.0 accepts a
// threshold but never reports it). It also keeps why QEMU paused a guest on an I/O error
// (libvirt's io-error-reason event) and resumes the guest only once there is room again.
import { statSync } from 'node:fs';
import type { JobOperation } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import { isFinished, type DomainDetail, type DomainState, type Job, type JobEvent, type Layer } from '../../../shared/model.ts';
import type { GuestIoPause, SpaceGuardNote, SpaceGuardSettings } from '../../../shared/space-guard.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { toStrataError } from '../../libvirt/errors.ts';
import type { BlockThresholdNotice, IoErrorNotice } from '../../libvirt/types.ts';
import { log } from '../../log/logger.ts';
import { parseDomainXml } from '../chains/domain-xml.ts';
import { bytesText } from './findings.ts';
import { judgeSpace, limitsFor, nextThreshold, spaceOf, type SpaceFacts, type SpaceLimits } from './space-rules.ts';

const MiB = 1024 * 1024;

/** What the guard needs of a libvirt connection. */
export type GuardConnection = Pick<LibvirtConnection, 'onBlockThreshold' | 'onIoError' | 'setBlockThreshold' | 'domainResume' | 'domainState' | 'domainXml'>;

export interface SpaceGuardDeps {
  hostId: string;
  /** The host is this machine: only then can its file systems be measured. */
  local: boolean;
  settings: SpaceGuardSettings;
  /** The host's open connection, null while there is none. */
  conn(): GuardConnection | null;
  /** Puts the guard's word on a running job (kept in its events and history). */
  note(domain: string, disk: string, note: SpaceGuardNote): void;
  /** Changes a job's limit the way the user does (job.setSpeed), so a budget's rebalance keeps it. */
  setSpeed(domain: string, disk: string, bandwidthBytesPerSec: number): Promise<unknown>;
  abort(domain: string, disk: string): Promise<unknown>;
  domain(name: string): Promise<DomainDetail>;
  ioPause(pause: GuestIoPause): void;
  /** The file system's space where a path is; statfs by default. */
  space?: (path: string) => SpaceFacts | null;
  /** The size of a layer's file (what a block threshold is measured against). */
  fileBytes?: (path: string) => number | null;
  now?: () => number;
  /** How often the watched file systems are measured. */
  intervalMs?: number;
}

interface Watch {
  job: Job;
  target: string;
  thresholdDev: string | null;
  limits: SpaceLimits;
  note: SpaceGuardNote | null;
  thresholdEvents: number;
  /** A block threshold is set and has not fired yet. */
  armed: boolean;
  /** An action (throttle, abort, resume) is under way: no second one meanwhile. */
  acting: boolean;
  /** Why the guard's last throttle or abort failed (a read-only connection, say): it then only warns. */
  failed: string | null;
}

const key = (domain: string, disk: string): string => `${domain}/${disk}`;

function fileSize(path: string): number | null {
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
}

/** The layer a job grows and the name libvirt gives it, from the request (Strata's jobs) or from what libvirt shows (others'). */
export function growingLayer(job: Pick<Job, 'type' | 'disk'>, op: JobOperation | null, chain: readonly Layer[], mirrorPath: string | null): { path: string; dev: string | null } | null {
  const named = (layer: Layer | undefined): { path: string; dev: string | null } | null =>
    layer ? { path: layer.path, dev: layer === chain[0] ? job.disk : layer.index === null ? null : `${job.disk}[${layer.index}]` } : null;
  if (op?.kind === 'copy') return { path: op.destination, dev: null };
  if (op?.kind === 'commit') return named(op.base === undefined ? chain.at(-1) : chain.find((l) => l.index === op.base));
  if (op?.kind === 'pull' || job.type === 'pull') return named(chain[0]);
  if (mirrorPath === null) return null;
  // A copy's mirror is a new file; an active commit's is the base, a layer of the chain.
  return named(chain.find((l) => l.path === mirrorPath)) ?? { path: mirrorPath, dev: null };
}

/**
 * Whether the job grows a layer of a running domain's chain, or a copy's destination, through
 * QEMU: what the guard watches. A backup or a restore writes a new file whose room its preview
 * checked, and an offline job's daemon has no block-threshold event.
 */
function growsALayer(job: Pick<Job, 'type' | 'engine'>): boolean {
  return job.type !== 'backup' && job.type !== 'restore' && (job.engine ?? 'libvirt') === 'libvirt';
}

export class SpaceGuard {
  readonly #deps: SpaceGuardDeps;
  #settings: SpaceGuardSettings;
  readonly #space: (path: string) => SpaceFacts | null;
  readonly #fileBytes: (path: string) => number | null;
  readonly #now: () => number;
  /** Operations asked for, by disk, until their job appears. */
  readonly #expected = new Map<string, JobOperation>();
  readonly #plans = new Map<string, JobOperation>();
  readonly #watches = new Map<string, Watch>();
  /** Jobs whose watch is being set up. */
  readonly #arming = new Set<string>();
  /** Jobs the guard cannot watch (where they write is not known, or not readable): not tried again. */
  readonly #unwatched = new Set<string>();
  readonly #pauses = new Map<string, GuestIoPause>();
  #timer: NodeJS.Timeout | null = null;

  constructor(deps: SpaceGuardDeps) {
    this.#deps = deps;
    this.#settings = { ...deps.settings };
    this.#space = deps.space ?? spaceOf;
    this.#fileBytes = deps.fileBytes ?? fileSize;
    this.#now = deps.now ?? Date.now;
  }

  get settings(): SpaceGuardSettings {
    return { ...this.#settings };
  }

  /** New settings apply to the running jobs at once. */
  setSettings(settings: SpaceGuardSettings): void {
    this.#settings = { ...settings };
    for (const watch of this.#watches.values()) {
      const facts = this.#space(watch.target);
      if (facts) watch.limits = limitsFor(this.#settings, facts.totalBytes);
      void this.#check(watch);
    }
  }

  /** Registers the events on a new connection (registrations die with the connection). */
  async attach(conn: GuardConnection): Promise<void> {
    // A driver without these events (test:///) still connects: the guard then measures space only.
    try {
      await conn.onBlockThreshold((n) => this.threshold(n));
      await conn.onIoError((n) => void this.ioError(n));
    } catch (err) {
      log.info('the space guard cannot register for block-threshold or I/O-error events on this connection', { host: this.#deps.hostId, err });
    }
  }

  /** A job for `op` is being asked for on this disk: its watch follows the request's plan. */
  expect(domain: string, disk: string, op: JobOperation): void {
    this.#expected.set(key(domain, disk), op);
  }

  /** The request is over (started, queued or refused): an expectation no job took is dropped. */
  settled(domain: string, disk: string): void {
    this.#expected.delete(key(domain, disk));
  }

  /** Every job event of the host. */
  job(event: JobEvent): void {
    const k = key(event.domain, event.disk);
    const expected = this.#expected.get(k);
    if (expected && event.origin === 'strata' && (event.phase === 'queued' || event.phase === 'requested') && !this.#plans.has(event.id)) {
      this.#plans.set(event.id, expected);
      this.#expected.delete(k);
    }
    if (isFinished(event)) {
      this.#arming.delete(event.id);
      this.#unwatched.delete(event.id);
      this.#watches.delete(event.id);
      this.#plans.delete(event.id);
      if (this.#watches.size === 0) this.#stopTimer();
      return;
    }
    const watch = this.#watches.get(event.id);
    if (watch) {
      watch.job = event;
      return;
    }
    if ((event.phase === 'running' || event.phase === 'ready') && this.#deps.local && !this.#arming.has(event.id) && !this.#unwatched.has(event.id)) {
      if (!growsALayer(event)) {
        this.#unwatched.add(event.id);
        log.debug('the space guard does not watch this job: it grows no layer of a running domain (its free space was checked before it started)', { host: this.#deps.hostId, job: event.id, type: event.type, engine: event.engine ?? 'libvirt' });
        return;
      }
      this.#arming.add(event.id);
      this.#watch(event)
        .catch((err: unknown) => log.warn('the space guard could not watch a job; it runs unguarded', { host: this.#deps.hostId, job: event.id, err }))
        .finally(() => {
          if (this.#arming.delete(event.id) && !this.#watches.has(event.id)) this.#unwatched.add(event.id);
        });
    }
  }

  async #watch(job: Job): Promise<void> {
    const plan = this.#plans.get(job.id) ?? null;
    const detail = await this.#deps.domain(job.domain);
    const chain = detail.disks.find((d) => d.target === job.disk)?.chain ?? [];
    let mirror: string | null = null;
    if (!plan && job.type !== 'pull') {
      const conn = this.#deps.conn();
      mirror = conn ? (parseDomainXml(await conn.domainXml(job.domain)).mirrors.get(job.disk)?.path ?? null) : null;
    }
    const layer = growingLayer(job, plan, chain, mirror);
    if (!layer) {
      log.info('a commit started elsewhere is not watched for space: libvirt does not say which layer it writes into', { host: this.#deps.hostId, job: job.id });
      return;
    }
    const facts = this.#space(layer.path);
    // The job may have ended while the chain was read.
    if (!facts || !this.#arming.has(job.id)) return;
    const watch: Watch = { job, target: layer.path, thresholdDev: layer.dev, limits: limitsFor(this.#settings, facts.totalBytes), note: null, thresholdEvents: 0, armed: false, acting: false, failed: null };
    this.#watches.set(job.id, watch);
    this.#startTimer();
    await this.#check(watch, facts);
  }

  /** libvirt's block-threshold event: a watched layer has used the room it was given. */
  threshold(n: BlockThresholdNotice): void {
    for (const watch of this.#watches.values()) {
      if (watch.job.domain !== n.domain || watch.thresholdDev !== n.dev) continue;
      watch.thresholdEvents += 1;
      watch.armed = false;
      log.debug('block threshold reached', { host: this.#deps.hostId, job: watch.job.id, dev: n.dev, thresholdBytes: n.thresholdBytes, excessBytes: n.excessBytes });
      void this.#check(watch);
    }
  }

  #startTimer(): void {
    if (this.#timer) return;
    const tick = (): void => {
      this.#timer = null;
      if (this.#watches.size === 0) return;
      for (const watch of this.#watches.values()) void this.#check(watch);
      this.#timer = setTimeout(tick, this.#deps.intervalMs ?? 1000);
      this.#timer.unref();
    };
    this.#timer = setTimeout(tick, this.#deps.intervalMs ?? 1000);
    this.#timer.unref();
  }

  #stopTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  dispose(): void {
    this.#stopTimer();
    this.#watches.clear();
  }

  async #check(watch: Watch, known?: SpaceFacts): Promise<void> {
    if (watch.acting || !this.#watches.has(watch.job.id)) return;
    const facts = known ?? this.#space(watch.target);
    if (!facts) return;
    const throttled = watch.note?.state === 'throttled';
    const verdict = judgeSpace(facts.freeBytes, watch.limits, throttled);
    const { domain, disk } = watch.job;
    const where = `${bytesText(facts.freeBytes)} free on ${facts.mountPoint}`;
    const limit = bytesText(watch.limits.stopBelowBytes);
    const stopWord = this.#settings.action === 'throttle' ? 'slows it to 1 byte/s' : 'aborts it';
    if (watch.failed !== null && (verdict === 'stop' || verdict === 'warn')) {
      this.#tell(watch, facts, 'warning', `Little room left: ${where} where this job writes ${watch.target}, and the space guard could not step in: ${watch.failed}.`, `Free space on ${facts.mountPoint}, or abort the job.`, null);
      return;
    }
    watch.acting = true;
    try {
      switch (verdict) {
        case 'stop':
          if (this.#settings.action === 'abort') {
            this.#tell(watch, facts, 'aborted', `Aborted by the space guard: ${where}, below the ${limit} this host keeps free; the disk keeps the chain it had before the job.`, `Free space on ${facts.mountPoint}, then start the job again.`, null);
            await this.#deps.abort(domain, disk);
          } else {
            const restore = watch.job.requestedBandwidthBytesPerSec;
            await this.#deps.setSpeed(domain, disk, 1);
            this.#tell(
              watch,
              facts,
              'throttled',
              `Slowed to 1 byte/s by the space guard: ${where}, below the ${limit} this host keeps free. QEMU would pause the guest or fail the job if the file system filled.`,
              `Free at least ${bytesText(watch.limits.warnBelowBytes - facts.freeBytes)} on ${facts.mountPoint}: the job then goes on at ${restore === 0 ? 'full speed' : `${bytesText(restore)}/s`}. Or abort it.`,
              restore,
            );
          }
          return;
        case 'resume': {
          const restore = watch.note?.restoreBandwidthBytesPerSec ?? 0;
          await this.#deps.setSpeed(domain, disk, restore);
          this.#tell(watch, facts, 'resumed', `Going on at ${restore === 0 ? 'full speed' : `${bytesText(restore)}/s`}: ${where} again.`, null, null);
          break;
        }
        case 'hold':
          this.#tell(watch, facts, 'throttled', watch.note?.message ?? '', watch.note?.hint ?? null, watch.note?.restoreBandwidthBytesPerSec ?? null);
          return;
        case 'warn':
          this.#tell(watch, facts, 'warning', `Little room left: ${where} where this job writes ${watch.target}; below ${limit} the space guard ${stopWord}.`, `Free space on ${facts.mountPoint} to let the job finish.`, null);
          break;
        case 'ok':
          this.#tell(watch, facts, watch.note?.state === 'resumed' ? 'resumed' : 'watching', watch.note?.state === 'resumed' ? watch.note.message : `Watching ${facts.mountPoint}: ${bytesText(facts.freeBytes)} free; below ${limit} the space guard ${stopWord}.`, null, null);
          break;
      }
      if (!watch.armed) await this.#arm(watch, facts);
    } catch (err) {
      const e = toStrataError(err);
      // The job may have ended meanwhile; if not, the guard only warns from now on.
      log.warn(`the space guard could not act on a job: ${e.message}`, { host: this.#deps.hostId, job: watch.job.id });
      watch.failed = e.message;
    } finally {
      watch.acting = false;
    }
  }

  // The threshold is set once at the start and again after each event (QEMU forgets it once it fires).
  async #arm(watch: Watch, facts: SpaceFacts): Promise<void> {
    const conn = this.#deps.conn();
    if (!conn || watch.thresholdDev === null || watch.note?.state === 'throttled' || watch.note?.state === 'aborted') return;
    const current = this.#fileBytes(watch.target);
    const at = current === null ? null : nextThreshold(current, facts.freeBytes, watch.limits);
    if (at === null) return;
    try {
      await conn.setBlockThreshold(watch.job.domain, watch.thresholdDev, at);
      watch.armed = true;
    } catch (err) {
      log.debug('a block threshold could not be set; the guard measures the free space each second instead', { host: this.#deps.hostId, job: watch.job.id, dev: watch.thresholdDev, err });
    }
  }

  // A note is told when the guard's state changes, or the free space by at least 1 MiB.
  #tell(watch: Watch, facts: SpaceFacts, state: SpaceGuardNote['state'], message: string, hint: string | null, restore: number | null): void {
    const before = watch.note;
    const note: SpaceGuardNote = {
      state,
      target: watch.target,
      thresholdDev: watch.thresholdDev,
      thresholdEvents: watch.thresholdEvents,
      mountPoint: facts.mountPoint,
      freeBytes: facts.freeBytes,
      stopBelowBytes: watch.limits.stopBelowBytes,
      warnBelowBytes: watch.limits.warnBelowBytes,
      message,
      hint,
      restoreBandwidthBytesPerSec: restore,
      at: this.#now(),
    };
    const changed =
      !before ||
      before.state !== state ||
      before.thresholdEvents !== note.thresholdEvents ||
      before.stopBelowBytes !== note.stopBelowBytes ||
      Math.abs((before.freeBytes ?? 0) - facts.freeBytes) >= MiB;
    if (!changed) return;
    watch.note = note;
    if (state !== before?.state) log.info(`space guard: ${state}`, { host: this.#deps.hostId, job: watch.job.id, msg: message });
    this.#deps.note(watch.job.domain, watch.job.disk, note);
  }

  /** libvirt's io-error-reason event: QEMU paused the guest when a write failed (ENOSPC, …). */
  async ioError(n: IoErrorNotice): Promise<void> {
    if (n.action !== 'pause') return;
    let disk: string | null = null;
    try {
      const detail = await this.#deps.domain(n.domain);
      disk = detail.disks.find((d) => d.chain.some((l) => l.path === n.srcPath))?.target ?? null;
    } catch (err) {
      log.debug('the domain paused on an I/O error cannot be read; its disk is not named', { host: this.#deps.hostId, domain: n.domain, err });
    }
    const pause = this.#measured({
      hostId: this.#deps.hostId,
      domain: n.domain,
      paused: true,
      reason: n.reason || null,
      path: n.srcPath,
      disk,
      mountPoint: null,
      freeBytes: null,
      neededFreeBytes: null,
      canResume: true,
      message: '',
      at: this.#now(),
    });
    log.warn('QEMU paused a guest on an I/O error', { host: this.#deps.hostId, domain: n.domain, reason: n.reason, path: n.srcPath ?? '' });
    this.#pauses.set(n.domain, pause);
    this.#deps.ioPause(pause);
  }

  // The pause with the space there now, and whether Resume may go ahead.
  #measured(pause: GuestIoPause): GuestIoPause {
    const facts = pause.path !== null && this.#deps.local ? this.#space(pause.path) : null;
    const needed = facts ? Math.max(MiB, limitsFor(this.#settings, facts.totalBytes).stopBelowBytes) : null;
    const canResume = facts === null || needed === null || facts.freeBytes >= needed;
    const what = pause.reason === 'enospc' ? 'no space was left' : `a write failed (${pause.reason ?? 'unknown reason'})`;
    const file = pause.path ? ` writing ${pause.path}${pause.disk ? ` (${pause.disk})` : ''}` : '';
    const room = facts ? ` ${bytesText(facts.freeBytes)} free on ${facts.mountPoint} now${canResume ? '' : `; Resume needs ${bytesText(needed ?? 0)}`}.` : '';
    return {
      ...pause,
      mountPoint: facts?.mountPoint ?? null,
      freeBytes: facts?.freeBytes ?? null,
      neededFreeBytes: needed,
      canResume,
      message: `QEMU paused the guest: ${what}${file}.${room}`,
    };
  }

  /** Why the guest is paused, measured again now; null when QEMU did not pause it on an error Strata saw. */
  ioPause(domain: string): GuestIoPause | null {
    const pause = this.#pauses.get(domain);
    return pause ? this.#measured(pause) : null;
  }

  /** A lifecycle event: a guest paused on an I/O error that runs again is no longer told as paused. */
  async lifecycle(domain: string): Promise<void> {
    const pause = this.#pauses.get(domain);
    const conn = this.#deps.conn();
    if (!pause || !conn) return;
    let state: DomainState;
    try {
      state = await conn.domainState(domain);
    } catch {
      state = 'shutoff';
    }
    if (state === 'paused') return;
    this.#pauses.delete(domain);
    this.#deps.ioPause({ ...pause, paused: false, message: `The guest is ${state === 'running' ? 'running again' : state}.` });
  }

  /** Resumes a guest, refused while the file system its failed write went to is still below the limit. */
  async resume(domain: string): Promise<{ resumed: string }> {
    const conn = this.#deps.conn();
    if (!conn) throw new StrataError('unavailable', 'the host is not connected', { hint: 'Strata keeps retrying; resume once it is connected.' });
    const pause = this.ioPause(domain);
    if (pause && !pause.canResume) {
      throw new StrataError('conflict', `Not resumed: only ${bytesText(pause.freeBytes ?? 0)} free on ${pause.mountPoint}, where the guest's write failed; QEMU would pause it again at once.`, {
        hint: `Free at least ${bytesText((pause.neededFreeBytes ?? 0) - (pause.freeBytes ?? 0))} on ${pause.mountPoint}, then resume.`,
      });
    }
    const state = await conn.domainState(domain).catch((err: unknown) => {
      throw toStrataError(err, `Could not read ${domain}'s state`);
    });
    if (state !== 'paused') throw new StrataError('conflict', `${domain} is ${state}, not paused: there is nothing to resume`);
    try {
      await conn.domainResume(domain);
    } catch (err) {
      throw toStrataError(err, `Could not resume ${domain}`);
    }
    if (this.#pauses.delete(domain) && pause) this.#deps.ioPause({ ...pause, paused: false, message: 'The guest was resumed.' });
    return { resumed: domain };
  }
}
