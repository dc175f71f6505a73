// The space guard's decisions: the limits on a file system, the verdict at a given free space,
// where the next block threshold goes, and what the guard does to a job as the space shrinks and
// grows again. The rules are plain functions of numbers. The guard itself runs here against a fake
// connection and a fake statfs, and only because libvirt delivers a block-threshold event and a
// file system reaches an exact free space only when a real guest and a real disk happen to get
// there; test/core/95-space-guard runs the same guard on real libvirtd, QEMU and a tmpfs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { growingLayer, SpaceGuard, type GuardConnection } from '../../src/main/core/health/space-guard.ts';
import type { BlockThresholdNotice as ThresholdNotice, IoErrorNotice } from '../../src/main/libvirt/types.ts';
import { judgeSpace, limitsFor, nextThreshold, type SpaceFacts } from '../../src/main/core/health/space-rules.ts';
import type { DomainDetail, Job, JobEvent, Layer } from '../../src/shared/model.ts';
import { defaultSpaceGuard, type GuestIoPause, type SpaceGuardNote } from '../../src/shared/space-guard.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('space guard rules', () => {
  it('keeps the smaller of 256 MiB and 5 % free, and warns at twice that', () => {
    assert.deepEqual(limitsFor(defaultSpaceGuard, 1024 * GiB), { stopBelowBytes: 256 * MiB, warnBelowBytes: 512 * MiB });
    // A 1 GiB file system: 5 % is 51.2 MiB, the smaller.
    assert.deepEqual(limitsFor(defaultSpaceGuard, GiB), { stopBelowBytes: Math.floor(GiB * 0.05), warnBelowBytes: 2 * Math.floor(GiB * 0.05) });
    assert.equal(limitsFor({ ...defaultSpaceGuard, minFreeBytes: 0 }, GiB).stopBelowBytes, 0, 'a limit of 0 turns the guard off');
  });

  it('judges the free space: stop below the limit, warn below twice it, resume only above the warning level', () => {
    const limits = { stopBelowBytes: 100, warnBelowBytes: 200 };
    assert.equal(judgeSpace(1000, limits, false), 'ok');
    assert.equal(judgeSpace(199, limits, false), 'warn');
    assert.equal(judgeSpace(99, limits, false), 'stop');
    assert.equal(judgeSpace(150, limits, true), 'hold', 'a throttled job stays throttled until there is room to spare');
    assert.equal(judgeSpace(200, limits, true), 'resume');
    assert.equal(judgeSpace(0, { stopBelowBytes: 0, warnBelowBytes: 0 }, false), 'ok', 'the guard is off');
    assert.equal(judgeSpace(0, { stopBelowBytes: 0, warnBelowBytes: 0 }, true), 'resume', 'turning it off lets a throttled job go');
  });

  it('sets the next threshold at the warning level, then halfway to the limit, and none at the limit', () => {
    const limits = { stopBelowBytes: 100 * MiB, warnBelowBytes: 200 * MiB };
    assert.equal(nextThreshold(10 * MiB, 1000 * MiB, limits), 10 * MiB + 800 * MiB);
    assert.equal(nextThreshold(10 * MiB, 180 * MiB, limits), 10 * MiB + 40 * MiB);
    assert.equal(nextThreshold(10 * MiB, 100.5 * MiB, limits), 11 * MiB, 'at least 1 MiB on');
    assert.equal(nextThreshold(10 * MiB, 100 * MiB, limits), null);
  });

  it('names the layer a job grows: a commit its base by index, a pull the active layer, a copy its destination', () => {
    const chain: Layer[] = [
      { index: 1, type: 'file', path: '/i/top.qcow2', format: 'qcow2' },
      { index: 2, type: 'file', path: '/i/mid.qcow2', format: 'qcow2' },
      { index: 3, type: 'file', path: '/i/base.qcow2', format: 'qcow2' },
    ];
    const job = { type: 'commit' as const, disk: 'vda' };
    assert.deepEqual(growingLayer(job, { kind: 'commit', deleteLayers: false }, chain, null), { path: '/i/base.qcow2', dev: 'vda[3]' });
    assert.deepEqual(growingLayer(job, { kind: 'commit', base: 2, deleteLayers: false }, chain, null), { path: '/i/mid.qcow2', dev: 'vda[2]' });
    assert.deepEqual(growingLayer({ type: 'pull', disk: 'vda' }, null, chain, null), { path: '/i/top.qcow2', dev: 'vda' });
    const copy = { kind: 'copy' as const, destination: '/big/copy.qcow2', format: 'qcow2' as const, shallow: false, reuseExisting: false, synchronousWrites: false, afterReady: 'wait' as const };
    assert.deepEqual(growingLayer({ type: 'copy', disk: 'vda' }, copy, chain, null), { path: '/big/copy.qcow2', dev: null });
    // Started elsewhere: an active commit's mirror is its base, a non-active commit cannot be told.
    assert.deepEqual(growingLayer({ type: 'active-commit', disk: 'vda' }, null, chain, '/i/base.qcow2'), { path: '/i/base.qcow2', dev: 'vda[3]' });
    assert.equal(growingLayer(job, null, chain, null), null);
  });
});

/** A guard over a fake host: a file system whose free space the test sets, and a connection that records thresholds. */
function fakeHost(action: 'throttle' | 'abort', refuseSpeed: string | null = null) {
  const fs: SpaceFacts = { mountPoint: '/pool', freeBytes: 10 * GiB, totalBytes: 20 * GiB };
  const thresholds: { dev: string; bytes: number }[] = [];
  const calls: string[] = [];
  const notes: SpaceGuardNote[] = [];
  const pauses: GuestIoPause[] = [];
  let onThreshold: ((n: ThresholdNotice) => void) | null = null;
  let onIoError: ((n: IoErrorNotice) => void) | null = null;
  let state: 'running' | 'paused' = 'running';
  let reads = 0;
  const conn: GuardConnection = {
    onBlockThreshold: async (l) => ((onThreshold = l), 1),
    onIoError: async (l) => ((onIoError = l), 2),
    setBlockThreshold: async (_d, dev, bytes) => void thresholds.push({ dev, bytes }),
    domainResume: async () => void ((state = 'running'), calls.push('resume')),
    domainState: async () => state,
    domainXml: async () => '<domain/>',
  };
  const detail: DomainDetail = {
    name: 'dom',
    uuid: 'u',
    state: 'running',
    disks: [
      {
        target: 'vda',
        device: 'disk',
        bus: 'virtio',
        readOnly: false,
        shareable: false,
        chain: [
          { index: 1, type: 'file', path: '/pool/top.qcow2', format: 'qcow2' },
          { index: 2, type: 'file', path: '/pool/base.qcow2', format: 'qcow2' },
        ],
      },
    ],
  };
  const guard = new SpaceGuard({
    hostId: 'h',
    local: true,
    settings: { ...defaultSpaceGuard, action },
    conn: () => conn,
    note: (_d, _k, n) => void notes.push(n),
    setSpeed: async (_d, _k, bps) => {
      calls.push(`speed ${bps}`);
      if (refuseSpeed) throw new Error(refuseSpeed);
    },
    abort: async () => void calls.push('abort'),
    domain: async () => (reads++, detail),
    ioPause: (p) => void pauses.push(p),
    space: () => ({ ...fs }),
    fileBytes: () => 64 * MiB,
    intervalMs: 60_000,
  });
  const job: Job = {
    id: 'h/dom/vda@1',
    hostId: 'h',
    domain: 'dom',
    disk: 'vda',
    type: 'commit',
    phase: 'queued',
    cur: 0,
    end: 1,
    progress: null,
    bandwidthBytesPerSec: 0,
    requestedBandwidthBytesPerSec: 32 * MiB,
    afterReady: null,
    rateBytesPerSec: null,
    etaSeconds: null,
    startedAt: 1,
    updatedAt: 1,
    endedAt: null,
    origin: 'strata',
    outcome: null,
    leftover: null,
  };
  const event = (phase: Job['phase'], transition: JobEvent['transition']): JobEvent => ({ ...job, phase, transition });
  const settle = () => new Promise((r) => setImmediate(r));
  return {
    fs,
    thresholds,
    calls,
    notes,
    pauses,
    guard,
    event,
    settle,
    reads: () => reads,
    setState: (s: 'running' | 'paused') => (state = s),
    threshold: (n: ThresholdNotice) => onThreshold?.(n),
    ioError: (n: IoErrorNotice) => onIoError?.(n),
    attach: () => guard.attach(conn),
  };
}

describe('space guard on a job', () => {
  it('arms a threshold on the base a commit grows, warns, throttles to 1 byte/s at the limit, and gives the limit back once space is freed', async () => {
    const h = fakeHost('throttle');
    await h.attach();
    h.guard.expect('dom', 'vda', { kind: 'commit', deleteLayers: false });
    h.guard.job(h.event('queued', 'appeared'));
    h.guard.settled('dom', 'vda');
    h.guard.job(h.event('running', 'phase'));
    await h.settle();
    await h.settle();
    assert.equal(h.notes.at(-1)?.state, 'watching');
    assert.equal(h.notes.at(-1)?.target, '/pool/base.qcow2');
    // 10 GiB free, 256 MiB limit, warning at 512 MiB: the base may grow by the room down to the warning level.
    assert.deepEqual(h.thresholds, [{ dev: 'vda[2]', bytes: 64 * MiB + 10 * GiB - 512 * MiB }]);

    h.fs.freeBytes = 400 * MiB;
    h.threshold({ domain: 'dom', dev: 'vda[2]', path: '/pool/base.qcow2', thresholdBytes: 0, excessBytes: 0 });
    await h.settle();
    assert.equal(h.notes.at(-1)?.state, 'warning');
    assert.equal(h.notes.at(-1)?.thresholdEvents, 1);
    assert.deepEqual(h.thresholds.at(-1), { dev: 'vda[2]', bytes: 64 * MiB + 72 * MiB }, 'armed again, halfway to the limit');

    h.fs.freeBytes = 200 * MiB;
    h.threshold({ domain: 'dom', dev: 'vda[2]', path: '/pool/base.qcow2', thresholdBytes: 0, excessBytes: 0 });
    await h.settle();
    assert.deepEqual(h.calls, ['speed 1']);
    const throttled = h.notes.at(-1)!;
    assert.equal(throttled.state, 'throttled');
    assert.match(throttled.message, /^Slowed to 1 byte\/s by the space guard: 200(\.0)? MiB free on \/pool, below the 256(\.0)? MiB this host keeps free/);
    assert.match(throttled.hint ?? '', /Free at least 312(\.0)? MiB on \/pool: the job then goes on at 32(\.0)? MiB\/s/);
    assert.equal(throttled.restoreBandwidthBytesPerSec, 32 * MiB);

    // Freed, but not above the warning level: it stays throttled.
    h.fs.freeBytes = 300 * MiB;
    h.guard.job({ ...h.event('running', 'progress'), requestedBandwidthBytesPerSec: 1, bandwidthBytesPerSec: 1 });
    h.guard.setSettings({ ...defaultSpaceGuard, action: 'throttle' });
    await h.settle();
    assert.deepEqual(h.calls, ['speed 1']);
    h.fs.freeBytes = 2 * GiB;
    h.guard.setSettings({ ...defaultSpaceGuard, action: 'throttle' });
    await h.settle();
    assert.deepEqual(h.calls, ['speed 1', `speed ${32 * MiB}`]);
    assert.equal(h.notes.at(-1)?.state, 'resumed');
    h.guard.dispose();
  });

  it('aborts instead when the host says so, and says why before the job ends', async () => {
    const h = fakeHost('abort');
    h.guard.expect('dom', 'vda', { kind: 'commit', deleteLayers: false });
    h.guard.job(h.event('requested', 'appeared'));
    h.fs.freeBytes = 100 * MiB;
    h.guard.job(h.event('running', 'phase'));
    await h.settle();
    await h.settle();
    assert.deepEqual(h.calls, ['abort']);
    assert.equal(h.notes.at(-1)?.state, 'aborted');
    assert.match(h.notes.at(-1)?.message ?? '', /^Aborted by the space guard: 100(\.0)? MiB free on \/pool/);
    h.guard.job(h.event('cancelled', 'ended'));
    h.guard.dispose();
  });

  it('only warns once it could not slow the job (a read-only connection), instead of trying every second', async () => {
    const h = fakeHost('throttle', 'the host is connected read-only');
    h.guard.expect('dom', 'vda', { kind: 'commit', deleteLayers: false });
    h.guard.job(h.event('requested', 'appeared'));
    h.fs.freeBytes = 100 * MiB;
    h.guard.job(h.event('running', 'phase'));
    await h.settle();
    await h.settle();
    h.guard.setSettings({ ...defaultSpaceGuard, action: 'throttle' });
    await h.settle();
    assert.deepEqual(h.calls, ['speed 1'], 'tried once');
    assert.equal(h.notes.at(-1)?.state, 'warning');
    assert.match(h.notes.at(-1)?.message ?? '', /the space guard could not step in: the host is connected read-only/);
    h.guard.dispose();
  });

  it('keeps why QEMU paused a guest and refuses Resume until there is room', async () => {
    const h = fakeHost('throttle');
    await h.attach();
    h.fs.freeBytes = 0;
    h.setState('paused');
    h.ioError({ domain: 'dom', srcPath: '/pool/top.qcow2', devAlias: 'virtio-disk0', action: 'pause', reason: 'enospc' });
    await h.settle();
    await h.settle();
    const pause = h.pauses.at(-1)!;
    assert.equal(pause.paused, true);
    assert.equal(pause.disk, 'vda');
    assert.equal(pause.canResume, false);
    assert.match(pause.message, /^QEMU paused the guest: no space was left writing \/pool\/top\.qcow2 \(vda\)\. 0 KiB free on \/pool now; Resume needs 256(\.0)? MiB\./);
    await assert.rejects(h.guard.resume('dom'), /Not resumed: only 0 KiB free on \/pool/);
    assert.deepEqual(h.calls, []);

    h.fs.freeBytes = GiB;
    assert.equal(h.guard.ioPause('dom')?.canResume, true);
    assert.deepEqual(await h.guard.resume('dom'), { resumed: 'dom' });
    assert.deepEqual(h.calls, ['resume']);
    assert.equal(h.pauses.at(-1)?.paused, false);
    assert.equal(h.guard.ioPause('dom'), null);
  });
});

describe('space guard on jobs that grow no layer', () => {
  it('leaves backups, restores and offline jobs alone: no reads, no thresholds, no notes', async () => {
    const h = fakeHost('abort');
    await h.attach();
    const jobs: Partial<Job>[] = [{ type: 'backup' }, { type: 'restore', engine: 'qemu-storage-daemon' }, { type: 'pull', engine: 'qemu-storage-daemon' }, { type: 'restore', engine: 'qemu-img' }];
    for (const [i, kind] of jobs.entries()) {
      h.guard.job({ ...h.event('running', 'phase'), ...kind, id: `h/dom/vda@${10 + i}` });
      await h.settle();
    }
    h.fs.freeBytes = 0;
    h.guard.setSettings({ ...defaultSpaceGuard, action: 'abort' });
    await h.settle();
    assert.equal(h.reads(), 0, 'no domain read for a job it does not watch');
    assert.deepEqual(h.notes, []);
    assert.deepEqual(h.thresholds, []);
    assert.deepEqual(h.calls, []);
    h.guard.dispose();
  });
});
