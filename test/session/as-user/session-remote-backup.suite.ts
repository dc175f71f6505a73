// Run as an ordinary user (never root) by test/session/40-remote-backup.test.ts: backups of a
// REMOTE host's running domain. The remote host is this user's own qemu:///session reached over a
// genuine SSH transport (an sshd of the test's own on 127.0.0.1, logging in only as this user with a
// passphrase-protected key), so libvirt writes the images where that host's libvirt can, and Strata
// lists, verifies and removes the sets over the host's ssh, without the machine's system daemon.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { domainFolderName } from '../../../src/main/core/backup/store.ts';
import { sessionQemuUser } from '../../../src/main/core/hosts/session-user.ts';
import { createLabDomain, removeLabDomain, type LabDomain } from '../../../src/main/core/lab/lab.ts';
import { labDomainXml } from '../../../src/main/core/lab/lab-domain-xml.ts';
import type { BackupEvents, BackupSet } from '../../../src/shared/backup.ts';
import type { Events } from '../../../src/shared/contract.ts';
import type { HostInfo } from '../../../src/shared/model.ts';
import { guestWrite, compareImages } from '../../backup/backup-harness.ts';
import { startTestCore, type TestCore } from '../../core/core-harness.ts';
import { libvirt, LAB_ROOT, sweepStaleLabDomains, TEST_URI, uniqueLabName, virsh, waitFor, type Connection } from '../../lab/harness.ts';
import { startSshd, type TestSshd } from '../../ssh/sshd.ts';

assert.notEqual(process.getuid?.() ?? 0, 0, 'these tests are for an ordinary user: 40-remote-backup.test.ts runs them as one');
assert.equal(TEST_URI, 'qemu:///session', 'run with STRATA_TEST_URI=qemu:///session');

const MiB = 1024 * 1024;

function settled(t: TestCore, hostId: string, domain: string, setId: string, point: number): Promise<BackupSet> {
  return waitFor(
    async () => {
      const ended = t.events.some((e) => {
        if (e.event !== 'backup.changed') return false;
        const d = e.data as BackupEvents['backup.changed'];
        return d.hostId === hostId && d.domain === domain && d.setId === setId && d.point === point && d.status !== 'running';
      });
      return ended ? (await t.client.call('backup.list', { hostId, domain })).find((s) => s.id === setId) : undefined;
    },
    { timeoutMs: 60_000, what: `point ${point} of set ${setId} to settle` },
  );
}

describe("backups of a remote host's running domain, over SSH to this user's own qemu:///session", { timeout: 180_000 }, () => {
  let conn: Connection | undefined;
  let sshd: TestSshd | undefined;
  let t: TestCore | undefined;
  let dataDir = '';
  let hostId = '';
  const savedConfig = process.env['STRATA_SSH_CONFIG'];
  // A name the remote shell would act on if any word reached it unquoted: it would make a file named
  // INJECTED (libvirt allows no '/' in a name, so where depends on the shell's folder).
  const canary = 'INJECTED';
  const injected = async (): Promise<string[]> =>
    [...(await readdir(homedir(), { recursive: true })), ...(await readdir(LAB_ROOT, { recursive: true }))].filter((p) => p === canary || p.endsWith(`/${canary}`));
  const domain = `${uniqueLabName('remote-bk')} $(touch ${canary}) ';touch ${canary};' "\`touch ${canary}\`"`;
  const labDir = join(LAB_ROOT, uniqueLabName('remote-bk-dir'));
  // The remote folder holds spaces and shell syntax too.
  let remoteRoot = '';
  let lab: LabDomain | undefined;
  let uri = '';
  // The restored file's name holds shell syntax too.
  let restored = '';
  let firstSet = '';
  let abortedSet = '';

  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
    sshd = await startSshd({ setEnv: { XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'] ?? '' } });
    await sshd.trustHostKey();
    process.env['STRATA_SSH_CONFIG'] = sshd.sshConfig;
    dataDir = await mkdtemp(join(homedir(), '.strata-data-'));
    remoteRoot = join(homedir(), `remote backups $(touch ${canary}) 'x'`);
    restored = join(remoteRoot, `restored 'vda' $(touch ${canary}).qcow2`);
    t = await startTestCore({ uri: TEST_URI, dataDir });
    // Every passphrase question is answered (answerPrompts), and counted.
    uri = `qemu+ssh://${sshd.user}@127.0.0.1:${sshd.port}/session?keyfile=${sshd.clientKey}`;
    const added = await t.client.call('hosts.add', { uri, label: 'remote over SSH' });
    hostId = added.id;
    await waitFor(
      async () => {
        await answerPrompts();
        return t!.events.some((e) => e.event === 'host' && (e.data as HostInfo).id === hostId && (e.data as HostInfo).state === 'connected');
      },
      { timeoutMs: 30_000, what: 'the remote host to connect over SSH' },
    );
    lab = await createLabDomain(conn, { name: domain, dir: labDir, autoDestroy: true, qemuUser: sessionQemuUser(TEST_URI), virtualSize: 640 * MiB, baseDataBytes: 512 * MiB, overlayDataBytes: MiB });
  });
  after(async () => {
    if (savedConfig === undefined) delete process.env['STRATA_SSH_CONFIG'];
    else process.env['STRATA_SSH_CONFIG'] = savedConfig;
    await t?.close();
    if (conn) await removeLabDomain(conn, { name: domain, dir: labDir }).catch(() => undefined);
    await conn?.close();
    await sshd?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    if (remoteRoot) await rm(remoteRoot, { recursive: true, force: true });
  });

  const answered = new Set<string>();
  /** Answers, with the key's passphrase, the questions `core` asked so far about `host` that are not in `seen`. */
  const answerPassphrases = async (core: TestCore, host: string, seen: Set<string>): Promise<void> => {
    for (const e of core.events) {
      const p = e.data as Events['host.prompt'];
      if (e.event !== 'host.prompt' || p.hostId !== host || seen.has(p.promptId)) continue;
      seen.add(p.promptId);
      await core.client.call('host.answerPrompt', { hostId: host, promptId: p.promptId, answer: sshd!.passphrase });
    }
  };
  /** Answers the suite's Strata's passphrase questions asked so far. */
  const answerPrompts = (): Promise<void> => answerPassphrases(t!, hostId, answered);
  /** Awaits `run` while answering any passphrase question (the files' own ssh login, should it ask). */
  async function call<R>(run: () => Promise<R>): Promise<R> {
    const done = run();
    let finished = false;
    void done.then(
      () => (finished = true),
      () => (finished = true),
    );
    await waitFor(async () => {
      await answerPrompts();
      return finished;
    }, { timeoutMs: 60_000, what: 'a remote backup call to end' });
    return done;
  }

  it('has no folder until one is set on the remote host, and says where it is then', async () => {
    assert.deepEqual(await t!.client.call('backup.list', { hostId, domain }), [], 'no folder, no sets (and no error)');
    const before = await t!.client.call('backup.settings', { hostId, domain });
    assert.equal(before.location.source, 'unset');
    assert.equal(before.location.onHost, `${sshd!.user}@127.0.0.1:${sshd!.port}`);
    assert.match(before.location.refused ?? '', /choose a folder on .*Strata has no default there/);
    await assert.rejects(t!.client.call('backup.preview', { hostId, domain }), /has no backup folder yet/);
    const set = await t!.client.call('backup.setLocation', { hostId, path: remoteRoot });
    assert.deepEqual({ location: set.location, source: set.source, onHost: set.onHost }, { location: remoteRoot, source: 'set', onHost: before.location.onHost });
    const after = await call(() => t!.client.call('backup.settings', { hostId, domain }));
    assert.equal(after.location.refused, null);
    assert.ok((after.location.freeBytes ?? 0) > 0, 'the free space on the remote host, as its df says');
  });

  it('backs up full, then incremental, into the remote folder, a domain whose name is shell syntax; lists and verifies the set; restores a point to a new file on the remote host', async (ctx) => {
    const plan = await call(() => t!.client.call('backup.preview', { hostId, domain }));
    assert.equal(plan.kind, 'full');
    assert.equal(plan.onHost, `${sshd!.user}@127.0.0.1:${sshd!.port}`);
    assert.equal(plan.refused, null);
    assert.ok(plan.folder.startsWith(remoteRoot), plan.folder);
    const full = await call(() => t!.client.call('backup.start', { hostId, domain }));
    const first = await settled(t!, hostId, domain, full.set.id, 0);
    assert.equal(first.good, true, first.points[0]?.reason ?? '');
    await guestWrite(domain, 0x5a, 4 * MiB, 2 * MiB);
    const incremental = await call(() => t!.client.call('backup.start', { hostId, domain }));
    assert.equal(incremental.point.kind, 'incremental', incremental.point.reason ?? '');
    assert.equal(incremental.set.id, full.set.id);
    const set = await settled(t!, hostId, domain, full.set.id, 1);
    assert.deepEqual(set.points.map((p) => [p.kind, p.status]), [['full', 'complete'], ['incremental', 'complete']]);
    const folder = join(remoteRoot, domainFolderName(domain), set.id);
    assert.equal(set.folder, folder);
    assert.deepEqual((await readdir(folder)).sort(), ['manifest.json', 'vda.0.full.qcow2', 'vda.1.incremental.qcow2']);
    const verified = await call(() => t!.client.call('backup.verify', { hostId, domain, setId: set.id }));
    assert.equal(verified.ok, true, JSON.stringify(verified));
    assert.equal(verified.points.length, 2);

    ctx.diagnostic(`incremental: ${set.points[1]?.dataBytes} bytes copied`);
    firstSet = set.id;

    const into = await call(() => t!.client.call('backup.restorePreview', { hostId, domain, setId: set.id, point: 1, disk: 'vda', into: 'domain', destination: restored }));
    assert.match(into.refused ?? '', /restoring into a remote host's domain is not offered/);
    const plan2 = await call(() => t!.client.call('backup.restorePreview', { hostId, domain, setId: set.id, point: 1, disk: 'vda', destination: restored }));
    assert.deepEqual([plan2.refused, plan2.bandwidth], [null, 'fixed']);
    const done = await call(() => t!.client.call('backup.restore', { hostId, domain, setId: set.id, point: 1, disk: 'vda', destination: restored }));
    assert.equal(done.job.phase, 'completed', done.job.outcome ?? '');
    assert.equal(done.job.engine, 'qemu-img');
    assert.ok((done.bytes ?? 0) > 0);
    assert.deepEqual((await readdir(remoteRoot)).filter((f) => f.endsWith('.restoring')), [], 'no partial file is left');
  });

  it('an aborted remote restore leaves no file, whole or partial', async () => {
    const sets = await t!.client.call('backup.list', { hostId, domain });
    const target = join(remoteRoot, 'aborted.qcow2');
    const started = await call(() => t!.client.call('backup.restore', { hostId, domain, setId: sets[0]!.id, point: 0, disk: 'vda', destination: target, bandwidthBytesPerSec: MiB, wait: false }));
    assert.equal(started.job.bandwidthBytesPerSec, MiB);
    await t!.client.call('job.abort', { hostId, domain, disk: 'vda' });
    const ended = await waitFor(
      () => t!.events.map((e) => e.data as { id?: string; transition?: string; phase?: string; outcome?: string }).find((d) => d.id === started.job.id && d.transition === 'ended'),
      { timeoutMs: 30_000, what: 'the aborted restore to end' },
    );
    assert.equal(ended.phase, 'cancelled', ended.outcome ?? '');
    assert.deepEqual((await readdir(remoteRoot)).filter((f) => f.startsWith('.aborted') || f === 'aborted.qcow2'), [], 'no file is left');
  });

  it('an aborted remote backup leaves no set that lists as good, and no image', async () => {
    const started = await call(() => t!.client.call('backup.start', { hostId, domain, kind: 'full', bandwidthBytesPerSec: MiB }));
    await t!.client.call('job.abort', { hostId, domain, disk: 'vda' });
    const set = await settled(t!, hostId, domain, started.set.id, 0);
    assert.equal(set.good, false);
    assert.equal(set.points[0]?.status, 'cancelled', set.points[0]?.reason ?? '');
    assert.deepEqual((await readdir(join(remoteRoot, domainFolderName(domain), set.id))).filter((f) => f.endsWith('.qcow2')), [], 'no partial image is left');
    abortedSet = set.id;
  });

  it("a remote host's shut-off domain is refused, saying why and what to do", async () => {
    // A persistent domain, never started, on a copy of nothing: the refusal comes before any read.
    const name = `${uniqueLabName('remote-bk-off')} x`;
    const xml = labDomainXml({ name, diskPath: lab!.layers.at(-1)!, labDir, ownerPid: process.pid });
    await conn!.defineXML(xml);
    try {
      await waitFor(async () => (await t!.client.call('domains.list', { hostId })).some((d) => d.name === name && d.state === 'shutoff'), { timeoutMs: 30_000, what: 'the remote host to list the shut-off domain' });
      const plan = await call(() => t!.client.call('backup.preview', { hostId, domain: name }));
      assert.match(plan.refused ?? '', new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is shut off, and its images are on ${sshd!.user}@127\\.0\\.0\\.1:${sshd!.port}: .*start the domain to back it up`));
      await assert.rejects(t!.client.call('backup.start', { hostId, domain: name }), /is shut off, and its images are on .*not offered for a remote host/);
    } finally {
      await virsh(['undefine', '--', name]);
    }
  });

  it('a daily backup of the remote host missed while Strata was stopped runs once at start, into the remote folder, and says it was late', async (ctx) => {
    // As a Strata that last ran two days ago left its settings: the remote folder, and the schedule.
    const dataDir2 = await mkdtemp(join(homedir(), '.strata-data-'));
    ctx.after(() => rm(dataDir2, { recursive: true, force: true }));
    const now = Date.now();
    const at = new Date(now - 3_600_000);
    const hhmm = `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
    await writeFile(
      join(dataDir2, 'backups.json'),
      JSON.stringify({
        version: 1,
        locations: [{ uri, path: remoteRoot }],
        retention: [],
        schedules: [{ uri, domain, every: 'day', at: hhmm, weekday: 0, fullEvery: 7, lastRunAt: now - 2 * 86_400_000, runs: 3 }],
      }),
    );
    const t2 = await startTestCore({ uri: TEST_URI, dataDir: dataDir2 });
    ctx.after(() => t2.close());
    const host2 = (await t2.client.call('hosts.add', { uri, label: 'remote over SSH, again' })).id;
    const asked = new Set<string>();
    const began = await waitFor(
      async () => {
        await answerPassphrases(t2, host2, asked);
        return t2.events.map((e) => (e.event === 'backup.changed' ? (e.data as BackupEvents['backup.changed']) : null)).find((d) => d?.hostId === host2 && d.domain === domain && d.status === 'running');
      },
      { timeoutMs: 60_000, what: 'the missed scheduled backup of the remote host to start' },
    );
    const set = await settled(t2, host2, domain, began.setId, began.point ?? 0);
    assert.equal(set.good, true, set.points.at(-1)?.reason ?? '');
    assert.match(set.points.at(-1)?.reason ?? '', /run late: Strata was not running then/);
    assert.ok(set.folder.startsWith(remoteRoot), set.folder);
    assert.equal(asked.size, 1, 'the new Strata asked for the passphrase once');
  });

  it('quitting Strata during a remote restore aborts it (its qemu-img ends, no file is left) and settles a backup queued behind it as never started; the history says why', async (ctx) => {
    // A Strata of its own, to quit, on the same remote folder: the suite's goes on.
    const quitDir = await mkdtemp(join(homedir(), '.strata-data-'));
    ctx.after(() => rm(quitDir, { recursive: true, force: true }));
    await writeFile(join(quitDir, 'backups.json'), JSON.stringify({ version: 1, locations: [{ uri, path: remoteRoot }], retention: [], schedules: [] }));
    const q = await startTestCore({ uri: TEST_URI, dataDir: quitDir });
    ctx.after(() => q.close());
    const quitHost = (await q.client.call('hosts.add', { uri, label: 'remote over SSH, to quit' })).id;
    const asked = new Set<string>();
    await waitFor(
      async () => {
        await answerPassphrases(q, quitHost, asked);
        return q.events.some((e) => e.event === 'host' && (e.data as HostInfo).id === quitHost && (e.data as HostInfo).state === 'connected');
      },
      { timeoutMs: 30_000, what: 'the second Strata to connect to the remote host' },
    );

    const target = join(remoteRoot, 'quit.qcow2');
    // 1 MiB/s over the point's 512 MiB: it runs for minutes unless the quit ends it.
    const restore = await q.client.call('backup.restore', { hostId: quitHost, domain, setId: firstSet, point: 0, disk: 'vda', destination: target, bandwidthBytesPerSec: MiB, wait: false });
    // The restore holds the disk in the job model: a backup asked for now waits behind it.
    const queued = await q.client.call('backup.start', { hostId: quitHost, domain });
    assert.equal(queued.jobs[0]?.phase, 'queued');
    const partial = await waitFor(async () => (await readdir(remoteRoot)).find((f) => f.startsWith('.quit.qcow2.') && f.endsWith('.restoring')), {
      timeoutMs: 30_000,
      what: 'the remote qemu-img to create its partial file',
    });

    await q.close();
    assert.deepEqual((await readdir(remoteRoot)).filter((f) => f.startsWith('.quit.qcow2') || f === 'quit.qcow2'), [], 'no file is left');
    const writers: string[] = [];
    for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(partial)) writers.push(`${pid}: ${cmdline.replaceAll('\0', ' ')}`);
    }
    assert.deepEqual(writers, [], 'no process writes the partial file');
    const history = JSON.parse(await readFile(join(quitDir, 'history.json'), 'utf8')) as { jobs: { id: string; phase: string; outcome: string | null }[] };
    const ended = (id: string | undefined) => history.jobs.find((j) => j.id === id);
    assert.deepEqual([ended(restore.job.id)?.phase, ended(restore.job.id)?.outcome], ['cancelled', 'cancelled as Strata quit (nothing would finish it after); the partial image was removed']);
    assert.deepEqual([ended(queued.jobs[0]?.id)?.phase, ended(queued.jobs[0]?.id)?.outcome], ['cancelled', 'not started: Strata quit while it waited in the queue']);
    // Written on the remote host before the quit's ssh went.
    const manifest = JSON.parse(await readFile(join(queued.set.folder, 'manifest.json'), 'utf8')) as { points: { index: number; status: string; reason: string | null }[] };
    const point = manifest.points.find((p) => p.index === queued.point.index);
    assert.deepEqual([point?.status, point?.reason], ['cancelled', 'not started: Strata quit while it waited in the queue']);
  });

  it('retention on the remote folder keeps the newest good set only; that backup equals the disk byte for byte once QEMU stopped', async () => {
    await t!.client.call('backup.setRetention', { hostId, domain, keepSets: 1 });
    const full = await call(() => t!.client.call('backup.start', { hostId, domain, kind: 'full' }));
    const set = await settled(t!, hostId, domain, full.set.id, 0);
    assert.equal(set.good, true, set.points[0]?.reason ?? '');
    await waitFor(async () => (await t!.client.call('backup.list', { hostId, domain })).map((s) => s.id).join(',') === full.set.id, { timeoutMs: 30_000, what: 'retention to remove the older sets' });
    const left = await readdir(join(remoteRoot, domainFolderName(domain)));
    assert.deepEqual(left, [full.set.id], `the first set ${firstSet} and the aborted ${abortedSet} are gone from the remote folder`);

    // Read once QEMU has stopped (the domain is quiet: nothing writes after the backup).
    await lab!.domain.destroy();
    const difference = await compareImages(join(remoteRoot, domainFolderName(domain), full.set.id, 'vda.0.full.qcow2'), lab!.layers.at(-1)!);
    assert.equal(difference, null, difference ?? '');
    // The point restored on the remote host (the incremental on its full) equals the disk too: nothing wrote since.
    const restoredDifference = await compareImages(restored, lab!.layers.at(-1)!);
    assert.equal(restoredDifference, null, restoredDifference ?? '');
    assert.deepEqual(await injected(), [], 'no word reached a shell unquoted');
    // libvirt's connection asked once; the files' commands went through its ssh and asked nothing.
    assert.equal(answered.size, 1, `passphrase questions: ${answered.size}`);
  });
});
