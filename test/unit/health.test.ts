// The chain check's and the preflight's reasoning over inputs the lab cannot produce on demand:
// an AppArmor host (libvirt's capabilities XML), qemu-img's reports of bitmaps and snapshots, the
// mount table, and permissions judged for another user than the one running the tests.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { capabilitiesFrom } from '../../src/main/core/health/capabilities.ts';
import { allows, blockedFolder, groupsOf, mountOf, readMounts } from '../../src/main/core/health/file-access.ts';
import { chainFindings, fileFindings, imageFindings, type LayerFacts } from '../../src/main/core/health/findings.ts';
import { marginFor, preflight } from '../../src/main/core/health/preflight.ts';
import { parseCheck, parseImageInfo } from '../../src/main/core/health/qemu-img.ts';
import { confinementNote, domainQemuUser, securityModel } from '../../src/main/core/health/security-model.ts';
import type { HostCapabilities } from '../../src/shared/health.ts';
import type { ChainPreview, Layer } from '../../src/shared/model.ts';

// Written here as Debian 12's libvirt 9.0 prints it with AppArmor enabled (the apparmor model
// first, then DAC with the libvirt-qemu user 64055 and the kvm group); NOT captured from a real
// AppArmor host: none can be switched on on these machines. Cut to the <host> parts the check reads.
const debian12AppArmor = `<capabilities>
  <host>
    <uuid>4c4c4544-0042-3510-8052-b7c04f4e4d32</uuid>
    <cpu><arch>x86_64</arch><model>Skylake-Client-IBRS</model></cpu>
    <power_management><suspend_mem/></power_management>
    <iommu support='yes'/>
    <migration_features><live/><uri_transports><uri_transport>tcp</uri_transport><uri_transport>rdma</uri_transport></uri_transports></migration_features>
    <secmodel>
      <model>apparmor</model>
      <doi>0</doi>
    </secmodel>
    <secmodel>
      <model>dac</model>
      <doi>0</doi>
      <baselabel type='kvm'>+64055:+994</baselabel>
      <baselabel type='qemu'>+64055:+994</baselabel>
    </secmodel>
  </host>
  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <wordsize>64</wordsize>
      <emulator>/usr/bin/qemu-system-x86_64</emulator>
      <domain type='qemu'/>
      <domain type='kvm'/>
    </arch>
    <features><acpi default='on' toggle='yes'/><apic default='on' toggle='no'/><cpuselection/><deviceboot/><disksnapshot default='on' toggle='no'/></features>
  </guest>
</capabilities>`;

// As this lab's libvirt prints it (measured here): no confining driver, DAC as libvirt-qemu 999:995.
const labNoConfinement = `<capabilities><host><secmodel><model>none</model><doi>0</doi></secmodel>
<secmodel><model>dac</model><doi>0</doi><baselabel type='kvm'>+999:+995</baselabel><baselabel type='qemu'>+999:+995</baselabel></secmodel></host>
<guest><os_type>hvm</os_type><arch name='x86_64'><domain type='qemu'/></arch><features><disksnapshot default='on' toggle='no'/></features></guest></capabilities>`;

const domcaps = (backup: 'yes' | 'no') => `<domainCapabilities><features><backingStoreInput supported='yes'/><backup supported='${backup}'/></features></domainCapabilities>`;
const debianVersion = { libvirt: '9.0.0', hypervisorName: 'QEMU', hypervisor: '7.2.19' };

describe('security model', () => {
  it("reads AppArmor and QEMU's user from a Debian 12 capabilities XML", () => {
    const model = securityModel(debian12AppArmor);
    assert.equal(model.driver, 'apparmor');
    assert.deepEqual({ uid: model.qemuUser?.uid, gid: model.qemuUser?.gid }, { uid: 64055, gid: 994 });
    assert.match(model.qemuUser?.source ?? '', /base label for kvm/);
    assert.match(confinementNote('apparmor') ?? '', /libvirt 9\.0 \(Debian 12\) does not always add a backing layer a commit must write/);
  });

  it('reads DAC alone, and the domain\'s own label where it sets one', () => {
    assert.equal(securityModel(labNoConfinement).driver, 'dac');
    assert.equal(securityModel('<capabilities><host><secmodel><model>selinux</model></secmodel></host></capabilities>').driver, 'selinux');
    assert.equal(securityModel('<capabilities><host/></capabilities>').driver, 'none');
    const user = domainQemuUser(`<domain><name>d</name><seclabel type='dynamic' model='dac' relabel='yes'><label>+107:+107</label><imagelabel>+107:+107</imagelabel></seclabel></domain>`);
    assert.deepEqual({ uid: user?.uid, gid: user?.gid }, { uid: 107, gid: 107 });
    assert.equal(confinementNote('dac'), null);
  });

  it('capabilities: versions, gating with reasons', () => {
    const caps = capabilitiesFrom(debianVersion, debian12AppArmor, domcaps('no'));
    assert.equal(caps.libvirtVersion, '9.0.0');
    assert.equal(caps.qemuVersion, '7.2.19');
    assert.equal(caps.security, 'apparmor');
    assert.deepEqual(Object.keys(caps.unsupported), ['backup']);
    const test = capabilitiesFrom({ libvirt: '9.0.0', hypervisorName: 'TEST', hypervisor: '0.0.2' }, '<capabilities><host/><guest><arch><domain type="test"/></arch></guest></capabilities>', null);
    assert.match(test.unsupported.pull ?? '', /TEST driver runs no block jobs/);
    assert.match(test.unsupported.snapshot ?? '', /disk-only snapshots/);
  });
});

describe('findings', () => {
  const facts = (over: Partial<LayerFacts>): LayerFacts => ({
    path: '/img/mid.qcow2',
    name: 'vda[2] /img/mid.qcow2',
    position: 1,
    chainLength: 3,
    libvirtBacking: '/img/base.qcow2',
    live: false,
    info: null,
    infoError: null,
    check: null,
    checkError: null,
    access: null,
    mount: null,
    qemuUser: { uid: 64055, gid: 994, source: 'test' },
    security: 'apparmor',
    ...over,
  });
  // Shaped as qemu-img 7.2 prints it (measured here), for an image with a bitmap and a snapshot.
  const info = parseImageInfo(
    JSON.stringify({
      'virtual-size': 1073741824,
      filename: '/img/mid.qcow2',
      format: 'qcow2',
      'actual-size': 200704,
      'backing-filename': 'base.qcow2',
      'full-backing-filename': '/img/base.qcow2',
      snapshots: [{ name: 'before-upgrade', id: '1' }],
      'format-specific': { type: 'qcow2', data: { corrupt: false, bitmaps: [{ flags: ['in-use', 'auto'], name: 'backup-0', granularity: 65536 }] } },
      'dirty-flag': false,
    }),
  );

  it('a backing file without its format, internal snapshots among external layers, an inconsistent bitmap', () => {
    assert.equal(info.backingFormat, null);
    const codes = imageFindings(facts({ info })).map((f) => `${f.severity}:${f.code}`);
    assert.deepEqual(codes, ['warning:backing-format-missing', 'warning:internal-snapshots', 'warning:bitmap-inconsistent']);
    // The active layer of a running domain holds its bitmaps open: in use is normal there.
    const active = imageFindings(facts({ info: { ...info, snapshots: [], backingFormat: 'qcow2' }, position: 0, live: true }));
    assert.deepEqual(active, []);
  });

  it('corruptions and leaks from qemu-img check, with what a live check cannot prove', () => {
    const check = parseCheck('{"image-end-offset": 4521984, "total-clusters": 1024, "corruptions": 3, "check-errors": 0, "leaks": 65, "filename": "b", "format": "qcow2"}');
    const found = imageFindings(facts({ info: { ...info, snapshots: [], bitmaps: [], backingFormat: 'qcow2' }, check, live: true }));
    assert.deepEqual(found.map((f) => f.code), ['corrupt', 'leaks']);
    assert.match(found[0]!.message, /3 corruptions in vda\[2\] .*read beside the running QEMU/);
    assert.match(found[0]!.action ?? '', /^Run no job on this chain\. Shut the domain down/);
    const chain = chainFindings({ live: true, local: true, hostLabel: 'h', security: 'apparmor', qemuUser: null });
    assert.deepEqual(chain.map((f) => f.code), ['live', 'security-apparmor', 'qemu-user-unknown']);
    assert.match(chainFindings({ live: true, local: false, hostLabel: 'far', security: 'none', qemuUser: null })[0]!.message, /on far, not on this machine/);
  });

  it('a layer its owner cannot write names the permission error, and AppArmor as a likely cause', () => {
    const access = { ownerUid: 0, ownerGid: 0, mode: 0o444, qemuCanRead: true, qemuCanWrite: false, blockedFolder: null };
    const [f] = fileFindings(facts({ access }));
    assert.equal(f?.code, 'not-writable');
    assert.match(f?.message ?? '', /Permission denied" \(the file's owner and mode, or AppArmor's profile for the domain\)/);
    const handed = fileFindings(facts({ access: { ...access, mode: 0o644 } }));
    assert.equal(handed[0]?.code, 'handed-over');
  });
});

describe('file access', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-health-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const qemu = { uid: 64055, gid: 994, source: 'test' };

  it('judges owner, group and other bits for QEMU\'s user, which even as uid 0 has no override', () => {
    assert.equal(allows({ uid: 64055, gid: 0, mode: 0o600 }, qemu, new Set([994]), 2), true);
    assert.equal(allows({ uid: 64055, gid: 0, mode: 0o400 }, qemu, new Set([994]), 2), false);
    assert.equal(allows({ uid: 0, gid: 994, mode: 0o640 }, qemu, new Set([994]), 4), true);
    assert.equal(allows({ uid: 0, gid: 0, mode: 0o644 }, qemu, new Set([994]), 2), false);
    assert.equal(allows({ uid: 0, gid: 0, mode: 0o644 }, { uid: 0, gid: 0, source: 't' }, new Set([0]), 2), true);
    assert.equal(allows({ uid: 0, gid: 0, mode: 0o444 }, { uid: 0, gid: 0, source: 't' }, new Set([0]), 2), false);
  });

  it('finds the folder QEMU cannot enter', async () => {
    const closed = join(dir, 'closed');
    await mkdir(join(closed, 'inner'), { recursive: true });
    await chmod(dir, 0o755);
    await chmod(closed, 0o700);
    assert.equal(blockedFolder(join(closed, 'inner', 'x.qcow2'), qemu, new Set([994])), closed);
    await chmod(closed, 0o711);
    assert.equal(blockedFolder(join(closed, 'inner', 'x.qcow2'), qemu, new Set([994])), null);
  });

  it("adds the groups /etc/group lists QEMU's user in", () => {
    const passwd = 'root:x:0:0::/root:/bin/sh\nlibvirt-qemu:x:64055:994::/var/lib/libvirt:/usr/sbin/nologin\n';
    const group = 'kvm:x:994:\nlibvirt-qemu:x:64055:\ndisk:x:6:libvirt-qemu,other\n';
    assert.deepEqual([...groupsOf(qemu, passwd, group)].sort(), [6, 994]);
  });

  it('reads the mount table: the longest mount point holding a path, and read-only mounts', () => {
    const mounts = readMounts(
      [
        '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
        '30 22 0:40 / /srv/images ro,relatime shared:9 - xfs /dev/vdb rw',
        '31 22 0:41 / /srv/im\\040ages rw - tmpfs tmpfs rw,size=20480k',
      ].join('\n'),
    );
    assert.deepEqual(mountOf('/srv/images/a.qcow2', mounts), { mountPoint: '/srv/images', readOnly: true });
    assert.deepEqual(mountOf('/srv/im ages/a.qcow2', mounts), { mountPoint: '/srv/im ages', readOnly: false });
    assert.equal(mountOf('/srv/imagesX/a', mounts)?.mountPoint, '/');
  });

  it('the preflight of a commit on an AppArmor host names AppArmor; an unwritable base refuses it', async () => {
    const base = join(dir, 'base.qcow2');
    await writeFile(base, Buffer.alloc(4096));
    const layer = (path: string, index: number): Layer => ({ index, type: 'file', path, format: 'qcow2', sizes: { capacity: 1 << 30, allocation: 0, physical: 4096 } });
    const top = join(dir, 'top.qcow2');
    await writeFile(top, Buffer.alloc(4096));
    const preview: ChainPreview = {
      summary: '',
      before: [layer(top, 1), layer(base, 2)],
      after: [layer(base, 2)],
      unused: [layer(top, 1)],
      deleted: [],
      created: null,
      needs: ['drop-layers'],
      warnings: [],
      sharedWith: [],
      bytesToMove: 4096,
    };
    const capabilities: HostCapabilities = { ...capabilitiesFrom(debianVersion, debian12AppArmor, domcaps('yes')) };
    await chmod(base, 0o644);
    const ok = await preflight(preview, { kind: 'commit', deleteLayers: false }, { hostLabel: 'h', local: true, capabilities });
    assert.equal(ok?.verdict, 'ok');
    assert.equal(ok?.target, base);
    assert.deepEqual(ok?.findings.map((f) => f.code), ['confined-apparmor']);
    assert.match(ok?.findings[0]?.message ?? '', /AppArmor: libvirt 9\.0 may not let QEMU write/);
    await chmod(base, 0o444);
    const refused = await preflight(preview, { kind: 'commit', deleteLayers: false }, { hostLabel: 'h', local: true, capabilities });
    assert.equal(refused?.verdict, 'refused');
    assert.match(refused?.findings[0]?.message ?? '', /cannot write .*base\.qcow2 .*mode 0444.*or AppArmor's profile/);
    assert.equal(marginFor(0), 32 * 1024 * 1024);
    assert.equal(marginFor(10 * 1024 ** 3), Math.ceil(10 * 1024 ** 3 * 0.05));
  });
});
