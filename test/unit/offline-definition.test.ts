// The definition rewrite after an offline job: only the disk's source, driver type and (when the
// definition spells it out) backingStore change; every other byte stays. Plain text in, text out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { definedSource, DefinitionError, defineNewChain, rewriteDiskChain } from '../../src/main/core/offline/domain-definition.ts';

const xml = `<domain type="kvm">
  <name>web &amp; db</name>
  <devices>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/iso/installer.iso'/>
      <target dev='sda' bus='sata'/>
    </disk>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2" cache="none"/>
      <source file="/img/top &amp; more.qcow2" index="3"/>
      <backingStore type='file' index='2'>
        <format type='qcow2'/>
        <source file='/img/mid.qcow2'/>
        <backingStore type='file' index='1'>
          <format type='qcow2'/>
          <source file='/img/base.qcow2'/>
          <backingStore/>
        </backingStore>
      </backingStore>
      <target dev="vda" bus="virtio"/>
      <!-- a comment the user keeps -->
    </disk>
  </devices>
</domain>
`;

test('the source and driver type change, escaped, and nothing else', () => {
  const out = rewriteDiskChain(xml, 'vda', [{ path: "/new/it's.raw", format: 'raw' }]);
  assert.deepEqual(definedSource(out, 'vda'), { path: "/new/it's.raw", format: 'raw' });
  assert.match(out, /<driver name="qemu" type='raw' cache="none"\/>/);
  assert.match(out, /<source file='\/new\/it&apos;s.raw' index="3"\/>/);
  assert.match(out, /<backingStore\/>\n      <target dev="vda"/);
  const untouched = (s: string): string => s.replace(/<disk type="file"[\s\S]*?<\/disk>/, '');
  assert.equal(untouched(out), untouched(xml));
  assert.ok(out.includes('<!-- a comment the user keeps -->'));
  assert.deepEqual(definedSource(out, 'sda'), { path: '/iso/installer.iso', format: 'raw' });
});

test('a spelled-out chain is written out again, nested, with the new layers', () => {
  const out = rewriteDiskChain(xml, 'vda', [
    { path: '/img/top & more.qcow2', format: 'qcow2' },
    { path: '/img/base.qcow2', format: 'qcow2' },
  ]);
  assert.ok(!out.includes('mid.qcow2'));
  assert.match(out, /<backingStore type='file'>\n {8}<format type='qcow2'\/>\n {8}<source file='\/img\/base.qcow2'\/>\n {8}<backingStore\/>\n {6}<\/backingStore>/);
  assert.deepEqual(definedSource(out, 'vda'), { path: '/img/top & more.qcow2', format: 'qcow2' });
});

test('no such disk, a non-file disk, and a definition changed during the job are refused', async () => {
  assert.throws(() => rewriteDiskChain(xml, 'vdz', [{ path: '/a', format: 'raw' }]), /no disk with target vdz/);
  const block = xml.replace('<disk type="file" device="disk">', '<disk type="block" device="disk">');
  assert.throws(() => rewriteDiskChain(block, 'vda', [{ path: '/a', format: 'raw' }]), /file disks only/);
  let defined: string | null = null;
  const access = { inactiveXml: async () => xml, define: async (x: string) => void (defined = x) };
  await assert.rejects(
    defineNewChain(access, 'web', 'vda', { path: '/img/other.qcow2', format: 'qcow2' }, [{ path: '/new.qcow2', format: 'qcow2' }]),
    (err: unknown) => err instanceof DefinitionError && /changed during the job/.test(err.message) && /\/new.qcow2/.test(err.message),
  );
  assert.equal(defined, null);
  await defineNewChain(access, 'web', 'vda', { path: '/img/top & more.qcow2', format: 'qcow2' }, [{ path: '/new.qcow2', format: 'qcow2' }]);
  assert.deepEqual(definedSource(defined!, 'vda'), { path: '/new.qcow2', format: 'qcow2' });
});
