// Backup throughput: a full push backup of the same running lab disk started through the core
// (backup.start, as the window does) and with `virsh backup-begin`, alternating, each timed from
// the request until libvirt's job-completed event (virsh: `virsh event --event job-completed`;
// Strata: the backup job's end in the hub). Then an incremental after the guest's disk took
// 64 MiB of writes: its size and time against the full one's.
//
//   node --import tsx bench/backup.mts [--rounds 3] [--data-mib 768]
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCore, defaultHostId as hostId } from '../src/main/core/api/core.ts';
import type { BackupEvents } from '../src/shared/backup.ts';
import type { JobEvent } from '../src/shared/model.ts';
import { makeTraversable, MiB } from '../src/main/core/lab/images.ts';
import { createTestLab, libvirt, sweepStaleLabDomains, TEST_URI, virsh } from '../test/lab/harness.ts';
import { load, median } from './lib/report.mts';

const { values: opts } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, 'data-mib': { type: 'string', default: '768' } } });
const ROUNDS = Number(opts.rounds);
const DATA = Number(opts['data-mib']) * MiB;

/** Resolves once virsh prints the domain's next job-completed event. */
function nextJobCompleted(domain: string): { ready: Promise<void>; done: Promise<void> } {
  const child = spawn('virsh', ['-c', TEST_URI, 'event', domain, '--event', 'job-completed', '--timeout', '300'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const done = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes("event 'job-completed'")) {
        child.kill();
        resolve();
      }
    });
    child.once('exit', () => (out.includes('job-completed') ? resolve() : reject(new Error(`virsh event ended without the event: ${out}`))));
  });
  // virsh registers before it prints anything; a short wait covers its start.
  return { ready: new Promise((r) => setTimeout(r, 500)), done };
}

async function main(): Promise<void> {
  console.log(`backup: ${ROUNDS} rounds of a full backup of ${DATA / MiB} MiB, Strata and virsh alternating; load ${load().join(' ')}`);
  await sweepStaleLabDomains(TEST_URI);
  const conn = await libvirt.open(TEST_URI);
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-backup-'));
  const folder = await mkdtemp(join(tmpdir(), 'strata-bench-backups-'));
  await makeTraversable(folder);
  const core = await createCore({ uri: TEST_URI, dataDir, labRoot: null });
  const lab = await createTestLab(conn, { tag: 'bench-backup', layers: 1, virtualSize: 1024 * MiB, baseDataBytes: DATA });
  const ended = new Map<string, number>();
  const settled = new Map<string, number>();
  core.hub.on((event, data) => {
    if (event === 'job' && (data as JobEvent).transition === 'ended') ended.set((data as JobEvent).id, Date.now());
    if (event === 'backup.changed' && (data as BackupEvents['backup.changed']).status === 'complete') {
      const d = data as BackupEvents['backup.changed'];
      settled.set(`${d.setId}/${d.point}`, Date.now());
    }
  });
  const until = async (check: () => boolean): Promise<void> => {
    while (!check()) await new Promise((r) => setTimeout(r, 5));
  };
  try {
    await core.service['backup.setLocation']({ hostId, path: folder });
    const strata: number[] = [];
    const virshMs: number[] = [];
    let lastFullMs = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // virsh's backup is a job the core follows too (started elsewhere): the disk is free once it has ended there.
      for (;;) {
        const jobs = await core.service['jobs.list']({ hostId });
        if (!jobs.some((j) => j.domain === lab.name && j.endedAt === null)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const t0 = Date.now();
      const started = await core.service['backup.start']({ hostId, domain: lab.name, kind: 'full', bandwidthBytesPerSec: 0 });
      const id = started.jobs[0]!.id;
      await until(() => ended.has(id));
      strata.push(ended.get(id)! - t0);
      await until(() => settled.has(`${started.set.id}/0`));
      lastFullMs = settled.get(`${started.set.id}/0`)! - t0;

      const target = join(folder, `virsh-${round}.qcow2`);
      const xml = join(folder, `virsh-${round}.xml`);
      await writeFile(xml, `<domainbackup mode='push'><disks><disk name='vda' backup='yes' type='file'><target file='${target}'/><driver type='qcow2'/></disk></disks></domainbackup>`);
      const event = nextJobCompleted(lab.name);
      await event.ready;
      const t1 = Date.now();
      await virsh(['backup-begin', lab.name, xml]);
      await event.done;
      virshMs.push(Date.now() - t1);
      await rm(target, { force: true });
    }
    const ratio = median(virshMs) / median(strata);
    console.log(`full backup, request to job end: Strata ${strata.join(', ')} ms; virsh ${virshMs.join(', ')} ms; throughput Strata/virsh ${ratio.toFixed(2)} (median)`);
    console.log(`full backup, request to the set written as complete: ${lastFullMs} ms (last round)`);

    await virsh(['qemu-monitor-command', lab.name, '--hmp', `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x5a 0 ${64 * MiB}"`]);
    const t2 = Date.now();
    const inc = await core.service['backup.start']({ hostId, domain: lab.name, kind: 'auto', bandwidthBytesPerSec: 0 });
    await until(() => settled.has(`${inc.set.id}/${inc.point.index}`));
    const incMs = Date.now() - t2;
    const sets = await core.service['backup.list']({ hostId, domain: lab.name });
    const set = sets.find((s) => s.id === inc.set.id)!;
    const full = set.points[0]!.images[0]!;
    const incImage = set.points[inc.point.index]!.images[0]!;
    const fullBytes = (await stat(join(set.folder, full.file))).size;
    const incBytes = (await stat(join(set.folder, incImage.file))).size;
    console.log(
      `incremental after 64 MiB written: ${(incBytes / MiB).toFixed(1)} MiB in ${incMs} ms; the full one: ${(fullBytes / MiB).toFixed(1)} MiB in ${lastFullMs} ms (request to set complete)`,
    );
  } finally {
    await core.close();
    await lab.dispose();
    await conn.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(folder, { recursive: true, force: true });
  }
}

await main();
