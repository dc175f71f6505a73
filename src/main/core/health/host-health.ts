// What the service asks about a host's health: its capabilities, a disk's chain check, an
// operation's preview with its preflight, and the refusal of a job the preflight says cannot work.
import type { Operation } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { ChainCheck, HostCapabilities } from '../../../shared/health.ts';
import type { ChainPreview, Confirmation, DomainDetail } from '../../../shared/model.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { isLocalUri } from '../hosts/destinations.ts';
import { CapabilitiesCache, unknownCapabilities, type CapabilitiesSource } from './capabilities.ts';
import { checkChain } from './chain-check.ts';
import { bytesText } from './findings.ts';
import { preflight } from './preflight.ts';
import { domainQemuUser } from './security-model.ts';

/** The host as health needs it (the Host class fits). */
export interface HostRef {
  id: string;
  uri: string;
  label: string;
  readOnly: boolean;
  /** The host's open libvirt connection, null while there is none: capabilities and domains' labels are read on it. */
  readonly libvirt: (CapabilitiesSource & Pick<LibvirtConnection, 'domainXml'>) | null;
}

/** How long job.start waits for libvirt's capabilities before judging without them. */
const startWaitMs = 5000;

export class HostHealth {
  readonly #capabilities = new CapabilitiesCache();

  capabilities(host: HostRef): Promise<HostCapabilities> {
    return this.#capabilities.get(host.libvirt, host.label);
  }

  async check(host: HostRef, detail: DomainDetail, target: string): Promise<ChainCheck> {
    const capabilities = await this.#forDomain(host, detail.name, await this.capabilities(host));
    return checkChain(detail, target, { hostId: host.id, hostLabel: host.label, local: isLocalUri(host.uri), capabilities });
  }

  /**
   * The host's capabilities with QEMU's user as the domain's own live <seclabel model='dac'> sets
   * it (a per-domain label overrides libvirt's base label); the host-wide user where it sets none.
   */
  async #forDomain(host: HostRef, domain: string, capabilities: HostCapabilities): Promise<HostCapabilities> {
    if (!host.libvirt) return capabilities;
    let xml: string;
    try {
      xml = await host.libvirt.domainXml(domain);
    } catch {
      // The domain cannot be read now; the preview or the check reports that in its own words.
      return capabilities;
    }
    const user = domainQemuUser(xml);
    return user ? { ...capabilities, qemuUser: user } : capabilities;
  }

  /**
   * The preview with its preflight; a close call adds the 'low-space' confirmation. A preview
   * never waits for libvirt's capabilities (QEMU's domain capabilities can take seconds): until they have arrived, it
   * judges space but not QEMU's permissions, and says so; job.start waits up to `waitMs` for them.
   */
  async withPreflight(host: HostRef, domain: string, op: Operation, preview: ChainPreview, waitMs = 0): Promise<ChainPreview> {
    if (waitMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.capabilities(host), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      clearTimeout(timer);
    }
    const known = this.#capabilities.peek(host.libvirt, host.label);
    const capabilities = known
      ? await this.#forDomain(host, domain, known)
      : unknownCapabilities("libvirt's capabilities are still being read: QEMU's user and the security driver are not known yet");
    const checked = await preflight(preview, op, { hostLabel: host.label, local: isLocalUri(host.uri), capabilities });
    if (!checked) return preview;
    const needs: Confirmation[] = checked.verdict === 'at-risk' ? [...preview.needs, 'low-space'] : preview.needs;
    return { ...preview, needs, preflight: checked };
  }

  /**
   * Refuses, before anything starts, a job its preflight says will fail, with the reason and the
   * fix; and one that may fail unless 'low-space' is confirmed. `preview` reads the chain again.
   */
  async refuseDoomed(host: HostRef, domain: string, op: Operation, confirm: readonly Confirmation[], preview: () => Promise<ChainPreview>): Promise<void> {
    let current: ChainPreview;
    try {
      current = await this.withPreflight(host, domain, op, await preview(), startWaitMs);
    } catch {
      // The start itself reports what makes the operation impossible, in its own words.
      return;
    }
    const pf = current.preflight;
    if (!pf) return;
    const errors = pf.findings.filter((f) => f.severity === 'error');
    if (pf.verdict === 'refused') {
      throw new StrataError('conflict', `Not started: ${errors.map((f) => f.message).join(' ')}`, {
        hint: errors.map((f) => f.action).filter((a): a is string => a !== null).join(' ') || null,
      });
    }
    if (pf.verdict === 'at-risk' && !confirm.includes('low-space')) {
      const numbers = pf.neededBytes !== null && pf.freeBytes !== null ? ` (needs about ${bytesText(pf.neededBytes)}, ${bytesText(pf.freeBytes)} free)` : '';
      throw new StrataError('conflict', `Not started: the room where the job writes is close to what it needs${numbers}.`, {
        hint: 'Free some space, or send the request again with confirm: ["low-space"].',
      });
    }
  }
}
