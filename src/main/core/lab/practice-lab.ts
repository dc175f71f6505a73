// The practice lab offered to newcomers: a transient domain named strata-lab-N on a three-layer
// qcow2 chain of scratch images, made and removed in one step each, on this machine only.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { StrataError } from '../../../shared/errors.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { createLabDomain, removeLabDomain } from './lab.ts';

const labName = /^strata-lab-\d+$/;

/** Creates the next free strata-lab-N under `root`; resolves with its name. */
export async function createPracticeLab(conn: LibvirtConnection, root: string): Promise<string> {
  const taken = new Set((await conn.listDomains()).map((d) => d.name));
  let n = 1;
  while (taken.has(`strata-lab-${n}`) || existsSync(join(root, `strata-lab-${n}`))) n += 1;
  const name = `strata-lab-${n}`;
  await createLabDomain(conn.labConnection(), { name, dir: join(root, name) });
  return name;
}

export async function removePracticeLab(conn: LibvirtConnection, root: string, name: string): Promise<void> {
  if (!labName.test(name)) {
    throw new StrataError('invalid-request', `${name} is not a practice lab: only strata-lab-N domains are removed here`);
  }
  await removeLabDomain(conn.labConnection(), { name, dir: join(root, name) });
}
