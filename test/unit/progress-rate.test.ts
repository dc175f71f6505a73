import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressOf } from '../../src/main/core/jobs/progress.ts';
import { RateEstimator } from '../../src/main/core/jobs/rate.ts';

describe('progressOf', () => {
  it('is cur/end when end is a size', () => {
    assert.equal(progressOf(256, 1024), 0.25);
  });
  it('is unknown when libvirt cannot tell yet (cur=0, end=1)', () => {
    assert.equal(progressOf(0, 1), null);
    assert.equal(progressOf(0, 0), null);
  });
  it('is complete for an empty job ready to pivot (cur=1, end=1)', () => {
    assert.equal(progressOf(1, 1), 1);
  });
  it('never leaves 0..1 even if cur overtakes a shrinking end', () => {
    assert.equal(progressOf(2048, 1024), 1);
  });
});

describe('RateEstimator', () => {
  it('measures progress per second over the window', () => {
    const r = new RateEstimator(3000);
    r.sample(0, 0, 1000_000);
    assert.equal(r.bytesPerSec, null);
    r.sample(1000, 100_000, 1000_000);
    assert.equal(r.bytesPerSec, 100_000);
    r.sample(2000, 300_000, 1000_000);
    assert.equal(r.bytesPerSec, 150_000);
    assert.equal(r.etaSeconds(300_000, 1000_000), 5);
  });
  it('is not biased by bursty polls: a burst then a stall average out', () => {
    const r = new RateEstimator(10_000);
    r.sample(0, 0, 10_000_000);
    r.sample(200, 1_000_000, 10_000_000);
    for (let t = 400; t <= 2000; t += 200) r.sample(t, 1_000_000, 10_000_000);
    assert.equal(r.bytesPerSec, 500_000);
  });
  it('forgets samples older than the window', () => {
    const r = new RateEstimator(1000);
    r.sample(0, 0, 10_000_000);
    r.sample(500, 5_000_000, 10_000_000);
    for (let t = 1000; t <= 3000; t += 500) r.sample(t, 5_000_000 + (t - 500) * 100, 10_000_000);
    assert.equal(r.bytesPerSec, 100_000);
  });
  it('resets instead of going negative when progress moves back or end changes', () => {
    const r = new RateEstimator();
    r.sample(0, 500, 1000);
    r.sample(1000, 600, 1000);
    r.sample(2000, 400, 1000);
    assert.equal(r.bytesPerSec, null);
    r.sample(3000, 500, 2000);
    assert.equal(r.bytesPerSec, null);
  });
  it('gives no ETA while end is not a size', () => {
    const r = new RateEstimator();
    r.sample(0, 0, 1);
    r.sample(1000, 0, 1);
    assert.equal(r.etaSeconds(0, 1), null);
  });
});
