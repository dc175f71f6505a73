// Helpers for the fault tests: what a disk held before a job, compared byte for byte with what it
// holds after; qemu-img check of every image; and the accounting of jobs by id.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError, runTool } from '../../src/main/core/lab/images.ts';
import { isFinished, type Job } from '../../src/shared/model.ts';
import type { TestCore } from '../core/core-harness.ts';
import { jobEvents } from '../core/engine-harness.ts';
import { virsh } from '../lab/harness.ts';

/**
 * What the guest sees on `image` (read through its chain), as a raw file: taken while the lab's
 * domain runs, which is safe only because these lab domains have no OS and never write (-U).
 */
export async function snapshotToRaw(image: string, raw: string): Promise<void> {
  await runTool('qemu-img', ['convert', '-U', '-O', 'raw', image, raw]);
}

/** `qemu-img compare` of a raw reference with `image` through its chain: null when identical. */
export async function compareWithRaw(raw: string, image: string): Promise<string | null> {
  try {
    await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, image]);
    return null;
  } catch (err) {
    if (err instanceof LabError) return err.message;
    throw err;
  }
}

/** `qemu-img check` of every qcow2 image in `dir`: the failures, and how many were checked. */
export async function checkImagesIn(dir: string): Promise<{ checked: string[]; failures: string[] }> {
  const checked = (await readdir(dir)).filter((f) => f.endsWith('.qcow2')).map((f) => join(dir, f));
  const failures: string[] = [];
  for (const image of checked) {
    try {
      await runTool('qemu-img', ['check', '-q', image]);
    } catch (err) {
      failures.push(`${image}: ${String(err)}`);
    }
  }
  return { checked, failures };
}

/** Stops the domain so QEMU flushes and closes its images (readings of a running one are stale). */
export async function stopDomain(name: string, uri?: string): Promise<void> {
  await virsh(['destroy', name, '--graceful'], uri).catch((err: unknown) => {
    if (!/not running|failed to get domain|Domain not found/i.test(String(err))) throw err;
  });
}

/**
 * Every job event of the domain names one of `ids`, and each id ends exactly once (in the
 * events and in the history): nothing doubled, nothing invented, nothing lost.
 */
export async function assertOneLifeEach(t: TestCore, domain: string, ids: readonly string[]): Promise<void> {
  const events = jobEvents(t, domain);
  const phantom = events.filter((j) => !ids.includes(j.id));
  assert.deepEqual(phantom.map((j) => [j.id, j.origin, j.phase]), [], `no job but ${ids.join(', ')} on ${domain}`);
  for (const id of ids) {
    const ends = events.filter((j) => j.id === id && isFinished(j));
    assert.equal(new Set(ends.map((j) => j.phase)).size, 1, `${id} ends once: ${JSON.stringify(ends.map((j) => j.phase))}`);
  }
  const history = (await t.client.call('history.list', {})).filter((j: Job) => j.domain === domain);
  assert.deepEqual(history.map((j) => j.id).sort(), [...ids].sort(), 'the history holds each job once');
}
