// What a host's libvirt and QEMU can do, read once per connection URI: versions, the security
// driver and QEMU's user, and which operations the host cannot run, with the reason, so the window
// greys them out instead of failing at start. The addon binds no capabilities call, so this asks
// libvirt through virsh (an argument array, no shell) on the same URI.
import { execFile } from 'node:child_process';
import type { HostCapabilities } from '../../../shared/health.ts';
import { child, children, parseXml, type XmlElement } from '../chains/xml-tree.ts';
import { securityModel } from './security-model.ts';

// A test:/// host of a thousand domains takes virsh tens of seconds to open on a loaded machine.
const virshTimeoutMs = 60_000;
/** After a failed read, libvirt is asked again no sooner than this. */
const retryAfterMs = 60_000;

function virsh(uri: string, readOnly: boolean, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const all = ['-c', uri, ...(readOnly ? ['-r'] : []), ...args];
    execFile('virsh', all, { timeout: virshTimeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      reject(new Error(missing ? 'virsh is not installed (Debian: libvirt-clients)' : String(stderr).trim().replace(/^error: /gm, '') || error.message));
    });
  });
}

/** Reads `virsh version --daemon`: libvirt's (the daemon's where given) and the hypervisor's. */
export function parseVersions(text: string): { libvirt: string | null; hypervisor: string | null; hypervisorName: string | null } {
  const daemon = /Running against daemon: (\S+)/.exec(text)?.[1];
  const library = /Using library: libvirt (\S+)/.exec(text)?.[1];
  const hv = /Running hypervisor: (\S+) (\S+)/.exec(text);
  return { libvirt: daemon ?? library ?? null, hypervisor: hv?.[2] ?? null, hypervisorName: hv?.[1] ?? null };
}

const guestDomainTypes = (caps: XmlElement): string[] =>
  children(caps, 'guest').flatMap((g) => children(child(g, 'arch'), 'domain').map((d) => d.attrs.get('type') ?? ''));

/** Builds the answer from what virsh printed; separate from the reading so it can be tested on captured XML. */
export function capabilitiesFrom(versionText: string, capabilitiesXml: string, domainCapabilitiesXml: string | null): HostCapabilities {
  const versions = parseVersions(versionText);
  const caps = parseXml(capabilitiesXml);
  const types = guestDomainTypes(caps);
  const domainType = types.includes('kvm') ? 'kvm' : (types[0] ?? 'kvm');
  const { driver, qemuUser } = securityModel(capabilitiesXml, domainType);
  const unsupported: HostCapabilities['unsupported'] = {};
  if (versions.hypervisorName !== null && versions.hypervisorName !== 'QEMU') {
    const why = `libvirt's ${versions.hypervisorName} driver runs no block jobs; they need the QEMU driver`;
    unsupported.pull = why;
    unsupported.commit = why;
    unsupported.copy = why;
  }
  const diskSnapshot = children(caps, 'guest').some((g) => child(child(g, 'features'), 'disksnapshot') !== null);
  if (!diskSnapshot) unsupported.snapshot = "this host's libvirt does not offer external disk-only snapshots (no <disksnapshot/> in its capabilities)";
  const backup = domainCapabilitiesXml ? child(child(parseXml(domainCapabilitiesXml), 'features'), 'backup') : null;
  if (backup?.attrs.get('supported') !== 'yes') unsupported.backup = "this host's libvirt and QEMU do not support backup jobs (domain capabilities: backup not supported)";
  return { libvirtVersion: versions.libvirt, qemuVersion: versions.hypervisorName === 'QEMU' ? versions.hypervisor : null, security: driver, qemuUser, unsupported, problem: null };
}

export const unknownCapabilities = (problem: string): HostCapabilities => ({
  libvirtVersion: null,
  qemuVersion: null,
  security: 'unknown',
  qemuUser: null,
  unsupported: {},
  problem,
});

async function read(uri: string, readOnly: boolean): Promise<HostCapabilities> {
  try {
    // --daemon adds the remote daemon's version; a driver without a daemon may refuse it.
    const versionOf = (): Promise<string> => virsh(uri, readOnly, ['version', '--daemon']).catch(() => virsh(uri, readOnly, ['version']));
    const [version, caps] = await Promise.all([versionOf(), virsh(uri, readOnly, ['capabilities'])]);
    const types = guestDomainTypes(parseXml(caps));
    const virttype = types.includes('kvm') ? 'kvm' : types[0];
    // Only QEMU-like drivers answer domcapabilities; elsewhere backups are simply not offered.
    const domcaps = virttype ? await virsh(uri, readOnly, ['domcapabilities', '--virttype', virttype]).catch(() => null) : null;
    return capabilitiesFrom(version, caps, domcaps);
  } catch (err) {
    return unknownCapabilities(`libvirt's capabilities could not be read: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** One read per URI and connection mode, kept until `forget` (a reconnect may meet an upgraded daemon). */
export class CapabilitiesCache {
  readonly #cache = new Map<string, { answer: Promise<HostCapabilities>; settled: HostCapabilities | null }>();

  get(uri: string, readOnly: boolean): Promise<HostCapabilities> {
    const key = `${readOnly ? 'ro' : 'rw'} ${uri}`;
    let entry = this.#cache.get(key);
    if (!entry) {
      const answer = read(uri, readOnly);
      const made = { answer, settled: null as HostCapabilities | null };
      entry = made;
      this.#cache.set(key, made);
      void answer.then((c) => {
        made.settled = c;
        // A failed read is kept for a while, so that a slow or broken host is not asked on every preview.
        if (c.problem !== null) setTimeout(() => this.#cache.get(key) === made && this.#cache.delete(key), retryAfterMs).unref();
      });
    }
    return entry.answer;
  }

  /** The answer if it has arrived, else null (and the read is started). */
  peek(uri: string, readOnly: boolean): HostCapabilities | null {
    void this.get(uri, readOnly);
    return this.#cache.get(`${readOnly ? 'ro' : 'rw'} ${uri}`)?.settled ?? null;
  }

  forget(uri: string): void {
    for (const key of [...this.#cache.keys()]) if (key.endsWith(` ${uri}`)) this.#cache.delete(key);
  }
}
