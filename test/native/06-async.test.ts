// Nothing blocks the JS thread: libvirt calls run on the addon's worker threads, so timers keep
// firing while they are in flight, and many calls at once each get their own answer.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { labDomainXml } from '../../src/main/core/lab/lab-domain-xml.ts';
import { createBackingChain } from '../../src/main/core/lab/images.ts';
import { LAB_MARKER, removeLabDomain } from '../../src/main/core/lab/lab.ts';
import { hasJob, LAB_ROOT, libvirt, sweepStaleLabDomains, TEST_URI, uniqueLabName, useLabDomain, type Connection } from '../lab/harness.ts';

const MiB = 1024 * 1024;
const execFileAsync = promisify(execFile);
const INFO_BYTES = libvirt.VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES;

/** Counts ticks of a 5 ms interval, and the longest gap between two ticks. */
class Ticker {
  ticks = 0;
  maxGapMs = 0;
  #last = performance.now();
  #timer: NodeJS.Timeout;
  constructor() {
    this.#timer = setInterval(() => {
      const now = performance.now();
      this.maxGapMs = Math.max(this.maxGapMs, now - this.#last);
      this.#last = now;
      this.ticks += 1;
    }, 5);
  }
  /** Resolves right after a tick, so a measurement starts with a full interval ahead. */
  nextTick(): Promise<void> {
    const seen = this.ticks;
    return new Promise((resolve) => {
      const poll = (): void => {
        if (this.ticks > seen) resolve();
        else setImmediate(poll);
      };
      poll();
    });
  }
  reset(): void {
    this.ticks = 0;
    this.maxGapMs = 0;
    this.#last = performance.now();
  }
  stop(): void {
    clearInterval(this.#timer);
  }
}

describe(`calls in flight on ${TEST_URI} do not block the JS thread`, () => {
  let conn: Connection;
  before(async () => {
    await sweepStaleLabDomains();
    conn = await libvirt.open(TEST_URI);
  });
  after(() => conn.close());

  test('20 blockJobInfo calls at once on a running job: a 5 ms timer keeps ticking until all 20 resolve', async (t) => {
    const lab = await useLabDomain(t, conn);
    await lab.domain.blockPull('vda', MiB, libvirt.VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES);
    const ticker = new Ticker();
    t.after(() => ticker.stop());
    await ticker.nextTick();
    ticker.reset();

    const started = performance.now();
    let settled = 0;
    const calls = Array.from({ length: 20 }, () =>
      lab.domain.blockJobInfo('vda', INFO_BYTES).finally(() => {
        settled += 1;
      }),
    );
    const dispatchMs = performance.now() - started;
    // Dispatch only queues work: every call is still pending when it returns.
    assert.ok(calls.every((c) => c instanceof Promise));
    assert.equal(settled, 0);
    const ticksAtDispatch = ticker.ticks;

    const results = await Promise.all(calls);
    const settleMs = performance.now() - started;
    const ticks = ticker.ticks - ticksAtDispatch;
    t.diagnostic(`dispatch ${dispatchMs.toFixed(2)} ms, all settled after ${settleMs.toFixed(1)} ms, ${ticks} ticks, longest gap ${ticker.maxGapMs.toFixed(1)} ms`);

    assert.ok(ticks >= 1, `the timer fired ${ticks} times while the calls were in flight (${settleMs.toFixed(1)} ms)`);
    assert.equal(results.length, 20);
    for (const info of results) {
      assert.ok(hasJob(info), JSON.stringify(info));
      assert.equal(info.type, libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL);
      assert.equal(info.bandwidth, MiB);
    }
  });

  test('concurrent calls with different arguments each get their own answer', async (t) => {
    const lab = await useLabDomain(t, conn);
    await lab.domain.blockPull('vda', 2 * MiB, libvirt.VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES);
    // Alternate the unit: MiB/s answers 2, bytes/s answers 2 MiB; mixed with other calls.
    const infos = Array.from({ length: 20 }, (_, i) => lab.domain.blockJobInfo('vda', i % 2 === 0 ? 0 : INFO_BYTES));
    const [states, xml, uri, noJob] = await Promise.all([
      Promise.all(Array.from({ length: 5 }, () => lab.domain.state())),
      lab.domain.XMLDesc(),
      conn.getURI(),
      lab.domain.blockJobInfo('vdb').catch((e: unknown) => e),
    ]);
    const results = await Promise.all(infos);
    results.forEach((info, i) => {
      assert.ok(hasJob(info));
      assert.equal(info.bandwidth, i % 2 === 0 ? 2 : 2 * MiB, `call ${i}`);
    });
    for (const s of states) assert.equal(s[0], libvirt.VIR_DOMAIN_RUNNING);
    assert.match(xml, new RegExp(`<name>${lab.name}</name>`));
    assert.equal(uri, TEST_URI);
    assert.ok(noJob instanceof libvirt.LibvirtError && noJob.code === 'VIR_ERR_INVALID_ARG', String(noJob));
  });

  test('slow calls (createXML, then destroy, each a single libvirt call) let the timer run all along', async (t) => {
    // The chain first (child processes, not timed), then the two libvirt calls alone.
    const name = uniqueLabName('slow-calls');
    const dir = join(LAB_ROOT, name);
    t.after(() => removeLabDomain(conn, { name, dir }));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, LAB_MARKER), name);
    const chain = await createBackingChain({ dir, baseDataBytes: MiB, overlayDataBytes: MiB });
    const xml = labDomainXml({ name, diskPath: chain.layers[chain.layers.length - 1] ?? '', labDir: dir, ownerPid: process.pid });

    const ticker = new Ticker();
    t.after(() => ticker.stop());
    const timed = async <T>(what: string, call: () => Promise<T>): Promise<T> => {
      await ticker.nextTick();
      ticker.reset();
      const started = performance.now();
      const result = await call();
      const tookMs = performance.now() - started;
      t.diagnostic(`${what}: ${tookMs.toFixed(0)} ms, ${ticker.ticks} ticks, longest gap ${ticker.maxGapMs.toFixed(1)} ms`);
      // A call that blocked the JS thread would leave one gap about as long as itself.
      assert.ok(ticker.ticks >= 1, `${what}: no tick in ${tookMs.toFixed(0)} ms`);
      assert.ok(ticker.maxGapMs < Math.max(100, tookMs / 2), `${what}: longest gap ${ticker.maxGapMs.toFixed(1)} ms of ${tookMs.toFixed(0)} ms`);
      return result;
    };
    const dom = await timed('createXML', () => conn.createXML(xml, libvirt.VIR_DOMAIN_START_AUTODESTROY));
    await dom.blockPull('vda', MiB, libvirt.VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES);
    await timed('destroy with a job running', () => dom.destroy());
  });
});

describe("libvirt calls do not take libuv's thread pool", () => {
  test('with UV_THREADPOOL_SIZE=1 and 6 open() calls stuck on a daemon that never answers, a file read still completes', async (t) => {
    const child = join(import.meta.dirname, 'fixtures', 'silent-daemon-child.ts');
    const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', child], {
      env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
      timeout: 30_000,
    });
    const out = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { connected: number; settled: number; readMs: number };
    t.diagnostic(`opens connected ${out.connected}, settled ${out.settled}; the file read took ${out.readMs.toFixed(1)} ms`);
    assert.equal(out.connected, 6, 'every open() reached the silent daemon');
    assert.equal(out.settled, 0, 'the opens were still blocked inside libvirt while the file was read');
  });
});

