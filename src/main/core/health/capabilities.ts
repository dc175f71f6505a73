// What a host's libvirt and QEMU can do, read once per connection on the host's own connection:
// versions, the security driver and QEMU's user, and which operations the host cannot run, with
// the reason, so the window greys them out instead of failing at start.
import type { HostCapabilities } from '../../../shared/health.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import type { HostVersions } from '../../libvirt/types.ts';
import { child, children, parseXml, type XmlElement } from '../chains/xml-tree.ts';
import { securityModel } from './security-model.ts';
import { qemuUserOr } from '../hosts/session-user.ts';

/** After a failed read, libvirt is asked again no sooner than this. */
const retryAfterMs = 60_000;

const guestDomainTypes = (caps: XmlElement): string[] =>
  children(caps, 'guest').flatMap((g) => children(child(g, 'arch'), 'domain').map((d) => d.attrs.get('type') ?? ''));

/** Builds the answer from what libvirt said; separate from the reading so it can be tested on captured XML. */
export function capabilitiesFrom(versions: HostVersions, capabilitiesXml: string, domainCapabilitiesXml: string | null): HostCapabilities {
  const caps = parseXml(capabilitiesXml);
  const types = guestDomainTypes(caps);
  const domainType = types.includes('kvm') ? 'kvm' : (types[0] ?? 'kvm');
  const { driver, qemuUser } = securityModel(capabilitiesXml, domainType);
  const unsupported: HostCapabilities['unsupported'] = {};
  if (versions.hypervisorName !== 'QEMU') {
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

/** What the read needs of a connection (LibvirtConnection fits). */
export type CapabilitiesSource = Pick<LibvirtConnection, 'uri' | 'versions' | 'getCapabilities' | 'getDomainCapabilities'>;

async function read(conn: CapabilitiesSource): Promise<HostCapabilities> {
  try {
    const [versions, caps] = await Promise.all([conn.versions(), conn.getCapabilities()]);
    const types = guestDomainTypes(parseXml(caps));
    const virttype = types.includes('kvm') ? 'kvm' : types[0];
    // Only QEMU-like drivers answer domain capabilities; elsewhere backups are simply not offered.
    const domcaps = virttype ? await conn.getDomainCapabilities(null, null, null, virttype).catch(() => null) : null;
    const answer = capabilitiesFrom(versions, caps, domcaps);
    return { ...answer, qemuUser: qemuUserOr(answer.qemuUser, conn.uri) };
  } catch (err) {
    return unknownCapabilities(`libvirt's capabilities could not be read: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * One read per connection: a reconnection is a new connection, read again, since it may meet an
 * upgraded daemon. Without a connection there is nothing to read, and nothing is kept.
 */
export class CapabilitiesCache {
  readonly #cache = new WeakMap<CapabilitiesSource, { answer: Promise<HostCapabilities>; settled: HostCapabilities | null }>();

  get(conn: CapabilitiesSource | null, hostLabel: string): Promise<HostCapabilities> {
    if (!conn) return Promise.resolve(unknownCapabilities(`${hostLabel} is not connected: libvirt's capabilities cannot be read yet`));
    let entry = this.#cache.get(conn);
    if (!entry) {
      const answer = read(conn);
      const made = { answer, settled: null as HostCapabilities | null };
      entry = made;
      this.#cache.set(conn, made);
      void answer.then((c) => {
        made.settled = c;
        // A failed read is kept for a while, so that a slow or broken host is not asked on every preview.
        if (c.problem !== null) setTimeout(() => this.#cache.get(conn) === made && this.#cache.delete(conn), retryAfterMs).unref();
      });
    }
    return entry.answer;
  }

  /** The answer if it has arrived, else null (and the read is started). */
  peek(conn: CapabilitiesSource | null, hostLabel: string): HostCapabilities | null {
    void this.get(conn, hostLabel);
    return conn ? (this.#cache.get(conn)?.settled ?? null) : null;
  }
}
