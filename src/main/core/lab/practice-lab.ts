// The practice lab offered to newcomers: a transient domain named strata-lab-N on a three-layer
// qcow2 chain of scratch images, made and removed in one step each, on this machine only. Where
// the images go depends on which user QEMU runs as, asked of libvirt: the system instance's QEMU
// (another user) cannot enter a private home, a session instance's QEMU (the user) can.
import { existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { StrataError } from '../../../shared/errors.ts';
import type { QemuUser } from '../../../shared/health.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import { allows, groupsOf } from '../health/file-access.ts';
import { securityModel } from '../health/security-model.ts';
import { qemuUserOr } from '../hosts/session-user.ts';
import { createLabDomain, removeLabDomain } from './lab.ts';

const labName = /^strata-lab-\d+$/;

/** QEMU's user for lab domains (type 'qemu'): the DAC base label, else the session's rule. */
export async function labQemuUser(conn: Pick<LibvirtConnection, 'uri' | 'getCapabilities'>): Promise<QemuUser | null> {
  return qemuUserOr(securityModel(await conn.getCapabilities(), 'qemu').qemuUser, conn.uri);
}

/**
 * `root`, unless QEMU's user cannot enter a folder on the way to it and the user did not choose it
 * (STRATA_LAB_DIR): then a folder of this user's under the temporary folder, which every user may
 * enter. A non-root member of the libvirt group has a private home and data folder, and cannot
 * write under /var/lib/libvirt/images.
 */
export function practiceLabRoot(root: string, qemu: QemuUser | null, env: NodeJS.ProcessEnv = process.env): string {
  if (env['STRATA_LAB_DIR'] || qemu === null) return root;
  const groups = groupsOf(qemu);
  for (let dir = dirname(resolve(root)); ; dir = dirname(dir)) {
    if (existsSync(dir) && !allows(statSync(dir), qemu, groups, 1)) return join(tmpdir(), `strata-lab-${process.getuid?.() ?? 'user'}`);
    if (dir === dirname(dir)) return root;
  }
}

/** Creates the next free strata-lab-N under the lab root; resolves with its name. */
export async function createPracticeLab(conn: LibvirtConnection, root: string): Promise<string> {
  const qemuUser = await labQemuUser(conn);
  const labRoot = practiceLabRoot(root, qemuUser);
  const taken = new Set((await conn.listDomains()).map((d) => d.name));
  let n = 1;
  while (taken.has(`strata-lab-${n}`) || existsSync(join(labRoot, `strata-lab-${n}`))) n += 1;
  const name = `strata-lab-${n}`;
  await createLabDomain(conn.labConnection(), { name, dir: join(labRoot, name), qemuUser });
  return name;
}

export async function removePracticeLab(conn: LibvirtConnection, root: string, name: string): Promise<void> {
  if (!labName.test(name)) {
    throw new StrataError('invalid-request', `${name} is not a practice lab: only strata-lab-N domains are removed here`);
  }
  const labRoot = practiceLabRoot(root, await labQemuUser(conn));
  await removeLabDomain(conn.labConnection(), { name, dir: join(labRoot, name) });
}
