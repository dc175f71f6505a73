// Backup throughput: a full push backup of the same running lab disk started through the core
// (backup.start, as the window does) and with `virsh backup-begin`, in ABBA order (Strata first
// in even rounds, virsh first in odd ones, so neither always reads a disk the other just warmed or
// writes while the other's image is still being flushed). Every run is timed from the request to
// libvirt's job-completed event seen by the same observer (`virsh event --event job-completed`),
// so both sides are measured alike; Strata's runs also give the request to backup.start's reply
// (everything before libvirt copies) and the observer's event to the core's job end (its event
// wait). A third side, `virsh backup-begin` given a checkpoint, isolates what a checkpoint costs
// (Strata makes its checkpoint in a call of its own just before the backup, inside its timing). One untimed backup first takes the writeback of the lab's freshly
// written image out of the first round. Then an incremental after the guest's disk took 64 MiB of writes:
// its size and time against the full one's.
//
//   node --import tsx bench/backup.mts [--rounds 4] [--data-mib 768] [--json FILE]
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
import { load, median, round, writeResult, type Figure } from './lib/report.mts';

const { values: opts } = parseArgs({ options: { rounds: { type: 'string', default: '4' }, 'data-mib': { type: 'string', default: '768' }, json: { type: 'string' } } });
const ROUNDS = Number(opts.rounds);
const DATA = Number(opts['data-mib']) * MiB;

/** Resolves, with the time it was printed, once virsh prints the domain's next job-completed event. */
async function nextJobCompleted(domain: string): Promise<{ done: Promise<number> }> {
  const child = spawn('virsh', ['-c', TEST_URI, 'event', domain, '--event', 'job-completed', '--timeout', '600'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const done = new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes("event 'job-completed'")) {
        const at = Date.now();
        child.kill();
        resolve(at);
      }
    });
    child.once('exit', () => (out.includes('job-completed') ? undefined : reject(new Error(`virsh event ended without the event: ${out}`))));
  });
  // virsh registers before it prints anything; a short wait covers its start.
  await new Promise((r) => setTimeout(r, 500));
  return { done };
}

const stats = (xs: readonly number[]): string => `median ${round(median(xs))}, ${xs.map((x) => round(x)).join(' / ')}`;

async function main(): Promise<void> {
  const loadBefore = load();
  console.log(`backup: ${ROUNDS} rounds of a full backup of ${DATA / MiB} MiB, Strata, virsh and virsh with a checkpoint in ABBA order; load ${loadBefore.join(' ')}`);
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
  // virsh's backups are jobs the core follows too (started elsewhere): the disk is free once they have ended there.
  const idle = async (): Promise<void> => {
    for (;;) {
      const jobs = await core.service['jobs.list']({ hostId });
      if (!jobs.some((j) => j.domain === lab.name && j.endedAt === null)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const strata: number[] = [];
  const strataReply: number[] = [];
  const strataEventWait: number[] = [];
  const virshMs: number[] = [];
  const virshCheckpointMs: number[] = [];
  let lastFullMs = 0;
  let n = 0;

  const runStrata = async (): Promise<void> => {
    await idle();
    const completed = await nextJobCompleted(lab.name);
    const t0 = Date.now();
    const started = await core.service['backup.start']({ hostId, domain: lab.name, kind: 'full', bandwidthBytesPerSec: 0 });
    strataReply.push(Date.now() - t0);
    const id = started.jobs[0]!.id;
    const at = await completed.done;
    strata.push(at - t0);
    await until(() => ended.has(id));
    strataEventWait.push(ended.get(id)! - at);
    await until(() => settled.has(`${started.set.id}/0`));
    lastFullMs = settled.get(`${started.set.id}/0`)! - t0;
    // Kept sets would fill the disk and slow later writes: only the last is kept, for the incremental.
    for (const set of await core.service['backup.list']({ hostId, domain: lab.name })) {
      if (set.id !== started.set.id) await core.service['backup.remove']({ hostId, domain: lab.name, setId: set.id, confirm: ['delete-files'] });
    }
  };
  const runVirsh = async (checkpoint: boolean, into: number[]): Promise<void> => {
    await idle();
    const i = n++;
    const target = join(folder, `virsh-${i}.qcow2`);
    const xml = join(folder, `virsh-${i}.xml`);
    const cpXml = join(folder, `virsh-${i}-checkpoint.xml`);
    await writeFile(xml, `<domainbackup mode='push'><disks><disk name='vda' backup='yes' type='file'><target file='${target}'/><driver type='qcow2'/></disk></disks></domainbackup>`);
    await writeFile(cpXml, `<domaincheckpoint><name>bench-${i}</name><disks><disk name='vda' checkpoint='bitmap'/></disks></domaincheckpoint>`);
    const completed = await nextJobCompleted(lab.name);
    const t1 = Date.now();
    await virsh(['backup-begin', lab.name, xml, ...(checkpoint ? [cpXml] : [])]);
    into.push((await completed.done) - t1);
    await rm(target, { force: true });
    if (checkpoint) await virsh(['checkpoint-delete', lab.name, `bench-${i}`]);
  };

  try {
    await core.service['backup.setLocation']({ hostId, path: folder });
    // The lab's image was just written: one backup first, untimed, so no round pays for its writeback.
    await runVirsh(false, []);
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? (['strata', 'virsh', 'checkpoint'] as const) : (['checkpoint', 'virsh', 'strata'] as const);
      for (const side of order) {
        if (side === 'strata') await runStrata();
        else await runVirsh(side === 'checkpoint', side === 'checkpoint' ? virshCheckpointMs : virshMs);
      }
    }
    const ratio = median(virshMs) / median(strata);
    const perRound = strata.map((s, i) => (virshMs[i] ?? NaN) / s);
    console.log(`full backup, request to libvirt's job-completed: Strata ${strata.join(', ')} ms; virsh ${virshMs.join(', ')} ms; virsh with a checkpoint ${virshCheckpointMs.join(', ')} ms`);
    console.log(`throughput Strata/virsh ${ratio.toFixed(2)} (median; per round ${perRound.map((x) => x.toFixed(2)).join(', ')})`);
    console.log(`Strata: request to backup.start's reply ${strataReply.join(', ')} ms; job-completed to the core's job end ${strataEventWait.join(', ')} ms; to the set complete ${lastFullMs} ms (last round)`);

    await virsh(['qemu-monitor-command', lab.name, '--hmp', `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x5a 0 ${64 * MiB}"`]);
    await idle();
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
    console.log(`incremental after 64 MiB written: ${(incBytes / MiB).toFixed(1)} MiB in ${incMs} ms; the full one: ${(fullBytes / MiB).toFixed(1)} MiB in ${lastFullMs} ms (request to set complete)`);

    const figures: Figure[] = [
      { what: 'full backup throughput, Strata / virsh backup-begin', value: ratio, unit: '×', spread: `per round ${perRound.map((x) => x.toFixed(2)).join(', ')}`, against: `virsh ${stats(virshMs)} ms; Strata ${stats(strata)} ms`, target: '≥ 0.95×', met: ratio >= 0.95 },
      { what: 'virsh backup-begin with a checkpoint / without', value: median(virshMs) / median(virshCheckpointMs), unit: '×', against: `with ${stats(virshCheckpointMs)} ms` },
      { what: "Strata: request to backup.start's reply", value: median(strataReply), unit: 'ms', spread: stats(strataReply) },
      { what: "Strata: libvirt's job-completed to the core's job end", value: median(strataEventWait), unit: 'ms', spread: stats(strataEventWait) },
      { what: 'incremental after 64 MiB written: image size', value: incBytes / MiB, unit: 'MiB', against: `full ${(fullBytes / MiB).toFixed(1)} MiB` },
      { what: 'incremental after 64 MiB written: request to set complete', value: incMs, unit: 'ms', against: `full ${lastFullMs} ms` },
    ];
    await writeResult(opts.json, {
      name: 'backup',
      method: `one untimed virsh backup, then ${ROUNDS} rounds of a full push backup of a ${DATA / MiB} MiB lab disk (1 GiB virtual, one qcow2 layer), Strata (backup.start through the core, with its checkpoint), virsh backup-begin, and virsh backup-begin with a checkpoint, ABBA order; each timed from the request to libvirt's job-completed event seen by one virsh event observer`,
      loadBefore,
      loadAfter: load(),
      figures,
      notes: [],
      detail: { strata, virsh: virshMs, virshCheckpoint: virshCheckpointMs, strataReply, strataEventWait, lastFullMs, incMs, incBytes, fullBytes },
    });
  } finally {
    await core.close();
    await lab.dispose();
    await conn.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(folder, { recursive: true, force: true });
  }
}

await main();
