// The XML of a minimal transient lab domain: a machine with no OS (the BIOS just loops) that
// still runs every block job. TCG (type='qemu'), so it does not depend on /dev/kvm.

import { escapeXml } from '../../libvirt/xml.ts';

/** The namespace of the <metadata> element that marks a domain as a Strata lab domain. */
const LAB_METADATA_NS = 'https://strata.invalid/xmlns/lab/1';

export interface LabDomainXmlOptions {
  name: string;
  /** The active layer of the disk's backing chain (a qcow2 file). */
  diskPath: string;
  /** Disk target, default 'vda' (virtio). */
  target?: string;
  memoryMiB?: number;
  vcpus?: number;
  /** Recorded in <metadata> so a sweeper can find what a lab domain left behind. */
  labDir?: string;
  /** Recorded in <metadata>: the process that made the domain. */
  ownerPid?: number;
}

// Characters XML 1.0 cannot carry at all, escaped or not (C0 controls but tab/LF/CR, lone
// surrogates, U+FFFE/U+FFFF).
const NOT_XML_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ud800-\udfff\ufffe\uffff]/u;

function checkText(what: string, value: string): void {
  if (value.length === 0) throw new TypeError(`${what} must not be empty`);
  // The `u` flag makes a valid surrogate pair one code point, so only lone surrogates match.
  if (NOT_XML_CHAR.test(value)) throw new RangeError(`${what} contains a character XML cannot carry`);
}

function checkCount(what: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be a whole number from ${min} to ${max}, not ${value}`);
  }
}

/**
 * A minimal transient domain: 64 MiB, 1 vCPU, machine pc, one virtio qcow2 disk, no network, no
 * graphics (none is declared, and libvirt adds none without one), no balloon.
 */
export function labDomainXml(options: LabDomainXmlOptions): string {
  const target = options.target ?? 'vda';
  const memoryMiB = options.memoryMiB ?? 64;
  const vcpus = options.vcpus ?? 1;
  checkText('name', options.name);
  if (options.name.includes('/')) throw new RangeError('name must not contain "/" (libvirt refuses it)');
  checkText('diskPath', options.diskPath);
  if (!options.diskPath.startsWith('/')) throw new RangeError('diskPath must be absolute');
  if (!/^[a-z]+$/.test(target)) throw new RangeError(`target must be a disk name such as vda, not '${target}'`);
  checkCount('memoryMiB', memoryMiB, 16, 1024 * 1024);
  checkCount('vcpus', vcpus, 1, 256);
  if (options.labDir !== undefined) checkText('labDir', options.labDir);
  if (options.ownerPid !== undefined) checkCount('ownerPid', options.ownerPid, 1, 2 ** 31);

  const metadataAttrs = [
    options.labDir !== undefined ? ` dir="${escapeXml(options.labDir)}"` : '',
    options.ownerPid !== undefined ? ` pid="${options.ownerPid}"` : '',
  ].join('');

  return `<domain type='qemu'>
  <name>${escapeXml(options.name)}</name>
  <metadata>
    <strata:lab xmlns:strata="${LAB_METADATA_NS}"${metadataAttrs}/>
  </metadata>
  <memory unit='MiB'>${memoryMiB}</memory>
  <vcpu>${vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${escapeXml(options.diskPath)}'/>
      <target dev='${target}' bus='virtio'/>
    </disk>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}
