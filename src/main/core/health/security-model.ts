// The host's security driver and QEMU's user, as libvirt's capabilities XML states them, and what
// they mean for a layer a job must write. libvirt lists its drivers as <secmodel> elements under
// <host>: the first is the confining one (apparmor, selinux, or none), then 'dac', whose
// <baselabel> is the user:group QEMU runs as ("+64055:+994"), per domain type.
import type { QemuUser, SecurityDriver } from '../../../shared/health.ts';
import { child, children, parseXml } from '../chains/xml-tree.ts';

export interface SecurityModel {
  driver: SecurityDriver;
  qemuUser: QemuUser | null;
}

const drivers: readonly SecurityDriver[] = ['apparmor', 'selinux', 'dac', 'none'];

/** QEMU's user from a DAC label such as "+64055:+994" (names are not resolved: null then). */
export function parseDacLabel(label: string, source: string): QemuUser | null {
  const m = /^\+?(\d+):\+?(\d+)$/.exec(label.trim());
  return m ? { uid: Number(m[1]), gid: Number(m[2]), source } : null;
}

/** Reads `virConnectGetCapabilities`' XML; `domainType` picks the base label ('kvm' or 'qemu'). */
export function securityModel(capabilitiesXml: string, domainType = 'kvm'): SecurityModel {
  const host = child(parseXml(capabilitiesXml), 'host');
  const models = children(host, 'secmodel');
  const names = models.map((m) => child(m, 'model')?.text.trim() ?? '');
  // The confining driver if there is one, else DAC if that is all, else none.
  const confining = names.find((n) => n === 'apparmor' || n === 'selinux');
  const known = (n: string | undefined): SecurityDriver => drivers.find((d) => d === n) ?? (n ? 'unknown' : 'none');
  const driver: SecurityDriver = confining ? known(confining) : names.includes('dac') ? 'dac' : known(names.find((n) => n !== 'none'));
  const dac = models.find((m) => child(m, 'model')?.text.trim() === 'dac');
  const labels = children(dac ?? null, 'baselabel');
  const label = labels.find((l) => l.attrs.get('type') === domainType) ?? labels[0];
  const qemuUser = label ? parseDacLabel(label.text, `libvirt's capabilities (DAC base label for ${label.attrs.get('type') ?? 'domains'})`) : null;
  return { driver, qemuUser };
}

/** The domain's own DAC label, from its live XML's <seclabel model='dac'>, where it sets one. */
export function domainQemuUser(domainXml: string): QemuUser | null {
  const labels = children(parseXml(domainXml), 'seclabel');
  const dac = labels.find((s) => s.attrs.get('model') === 'dac');
  const label = child(dac ?? null, 'label')?.text;
  return label ? parseDacLabel(label, "the domain's live XML (<seclabel model='dac'>)") : null;
}

/**
 * What the driver means for a layer a job must write (a commit's base, a pull's active layer, a
 * copy's new file), in one sentence; null where it adds nothing to the file's own permissions.
 */
export function confinementNote(driver: SecurityDriver): string | null {
  switch (driver) {
    case 'apparmor':
      return (
        "AppArmor confines QEMU to the files libvirt lists in the domain's profile; libvirt 9.0 (Debian 12) does not always add a backing layer a commit must " +
        'write, and QEMU is then refused with "Permission denied" even though the file\'s owner and mode allow it'
      );
    case 'selinux':
      return "SELinux lets QEMU write only files labelled for this domain (svirt_image_t with its category); libvirt relabels the layers it knows, but a file on NFS or one labelled by hand can be refused";
    case 'unknown':
      return 'libvirt names a security driver Strata does not know: it may refuse what the file permissions allow';
    default:
      return null;
  }
}

/** The likely cause to name beside a permission error, by driver. */
export function likelyDenial(driver: SecurityDriver): string {
  if (driver === 'apparmor') return "the file's owner and mode, or AppArmor's profile for the domain";
  if (driver === 'selinux') return "the file's owner and mode, or its SELinux label";
  return "the file's owner and mode";
}
