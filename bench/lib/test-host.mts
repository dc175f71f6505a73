// A libvirt test:/// host of any size, as one XML file: libvirt's test driver holds every domain
// in memory, so the model's cost can be measured on 1,000 domains without QEMU or disk images.
import { writeFile } from 'node:fs/promises';

export interface TestHostShape {
  domains: number;
  disksPerDomain: number;
  /** The chain depth of disk `d` of domain `i` (1 = the active layer alone). */
  depth: (i: number, d: number) => number;
}

function disk(i: number, d: number, depth: number): string {
  const target = `vd${String.fromCharCode(97 + d)}`;
  const file = (layer: number): string => `/var/lib/strata-bench/dom${i}/${target}-${layer}.qcow2`;
  // libvirt's nesting: the active layer's <source index='1'>, then each backing layer inside the
  // one above it, innermost the base.
  let backing = '<backingStore/>';
  for (let layer = depth; layer >= 2; layer--) {
    backing = `<backingStore type='file' index='${layer}'><format type='qcow2'/><source file='${file(layer)}'/>${backing}</backingStore>`;
  }
  return (
    `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>` +
    `<source file='${file(1)}' index='1'/>${backing}<target dev='${target}' bus='virtio'/></disk>`
  );
}

export function testHostXml(shape: TestHostShape): string {
  const parts = ['<node>'];
  for (let i = 0; i < shape.domains; i++) {
    const disks: string[] = [];
    for (let d = 0; d < shape.disksPerDomain; d++) disks.push(disk(i, d, shape.depth(i, d)));
    parts.push(
      `<domain type='test'><name>bench-${String(i).padStart(4, '0')}</name><memory>65536</memory><vcpu>1</vcpu>` +
        `<os><type>hvm</type></os><devices>${disks.join('')}</devices></domain>`,
    );
  }
  parts.push('</node>');
  return parts.join('\n');
}

/** Writes the host's XML to `file` and returns its test:/// URI. */
export async function writeTestHost(file: string, shape: TestHostShape): Promise<string> {
  await writeFile(file, testHostXml(shape));
  return `test://${file}`;
}
