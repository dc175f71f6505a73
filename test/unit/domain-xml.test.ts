import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDomainXml } from '../../src/main/core/chains/domain-xml.ts';

// Shaped like `virsh dumpxml` of a running lab domain (libvirt 9.0).
const running = `<domain type='qemu' id='7'>
  <name>lab1</name>
  <uuid>0f8c2a6e-5d2b-4d7e-9d7c-1b2a3c4d5e6f</uuid>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/strata/lab/top.qcow2' index='3'/>
      <backingStore type='file' index='2'>
        <format type='qcow2'/>
        <source file='/var/lib/strata/lab/mid.qcow2'/>
        <backingStore type='file' index='1'>
          <format type='qcow2'/>
          <source file='/var/lib/strata/lab/base.qcow2'/>
          <backingStore/>
        </backingStore>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/vg0/data' index='4'/>
      <backingStore/>
      <target dev='vdb' bus='virtio'/>
      <shareable/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='nbd' name='export1' index='5'>
        <host name='storage.example' port='10809'/>
      </source>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
  </devices>
</domain>`;

describe('parseDomainXml', () => {
  const parsed = parseDomainXml(running);

  it('reads the name and UUID', () => {
    assert.equal(parsed.name, 'lab1');
    assert.equal(parsed.uuid, '0f8c2a6e-5d2b-4d7e-9d7c-1b2a3c4d5e6f');
  });

  it('lists the backing chain active layer first, with index and format', () => {
    const vda = parsed.disks.find((d) => d.target === 'vda');
    assert.ok(vda);
    assert.deepEqual(vda.chain, [
      { index: 3, type: 'file', path: '/var/lib/strata/lab/top.qcow2', format: 'qcow2' },
      { index: 2, type: 'file', path: '/var/lib/strata/lab/mid.qcow2', format: 'qcow2' },
      { index: 1, type: 'file', path: '/var/lib/strata/lab/base.qcow2', format: 'qcow2' },
    ]);
    assert.equal(vda.bus, 'virtio');
    assert.equal(vda.device, 'disk');
  });

  it('reads block and network sources and the shareable flag', () => {
    const vdb = parsed.disks.find((d) => d.target === 'vdb');
    assert.deepEqual(vdb?.chain, [{ index: 4, type: 'block', path: '/dev/vg0/data', format: 'raw' }]);
    assert.equal(vdb?.shareable, true);
    const vdc = parsed.disks.find((d) => d.target === 'vdc');
    assert.deepEqual(vdc?.chain, [{ index: 5, type: 'network', path: 'nbd://storage.example:10809/export1', format: 'raw' }]);
  });

  it('gives an empty chain to a drive with no medium, and keeps read-only', () => {
    const sda = parsed.disks.find((d) => d.target === 'sda');
    assert.deepEqual(sda?.chain, []);
    assert.equal(sda?.readOnly, true);
    assert.equal(sda?.device, 'cdrom');
  });

  it('shows only the active layer of an inactive definition (libvirt probes chains at start)', () => {
    const inactive = `<domain type='qemu'><name>off</name><uuid>u</uuid><devices>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/x/top.qcow2'/>
      <target dev='vda' bus='virtio'/></disk></devices></domain>`;
    assert.deepEqual(parseDomainXml(inactive).disks[0]?.chain, [{ index: null, type: 'file', path: '/x/top.qcow2', format: 'qcow2' }]);
  });

  it('refuses a document that is not a domain', () => {
    assert.throws(() => parseDomainXml('<network><name>default</name></network>'), /no <domain> element/);
  });

  it('keeps names with XML entities intact', () => {
    const xml = `<domain><name>a&amp;b</name><uuid>u</uuid><devices><disk type='file' device='disk'>
      <source file='/x/a&amp;b.qcow2'/><target dev='vda'/></disk></devices></domain>`;
    const p = parseDomainXml(xml);
    assert.equal(p.name, 'a&b');
    assert.equal(p.disks[0]?.chain[0]?.path, '/x/a&b.qcow2');
  });
});
