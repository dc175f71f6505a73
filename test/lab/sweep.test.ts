// The harness's last line of cleanup: a test process killed outright (no after hooks) leaves a
// lab behind; autodestroy removes its domain, and sweepStaleLabDomains removes the rest.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { isStaleLabName, libvirt, sweepStaleLabDomains, TEST_URI, uniqueLabName, waitFor } from './harness.ts';

const CHILD = fileURLToPath(new URL('./fixtures/lab-child.ts', import.meta.url));

/** Starts the child, waits for its lab, then SIGKILLs it. */
function labOfKilledChild(mode: 'autodestroy' | 'keep'): Promise<{ name: string; dir: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, TEST_URI], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let lab: { name: string; dir: string } | null = null;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (lab === null && out.includes('\n')) {
        lab = JSON.parse(out.slice(0, out.indexOf('\n'))) as { name: string; dir: string };
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(timer);
      if (lab) resolve(lab);
      else reject(new Error(`the child made no lab: ${out}`));
    });
  });
}

async function domainExists(name: string): Promise<boolean> {
  const conn = await libvirt.open(TEST_URI);
  try {
    await conn.lookupByName(name);
    return true;
  } catch (err) {
    if (err instanceof libvirt.LibvirtError && err.code === 'VIR_ERR_NO_DOMAIN') return false;
    throw err;
  } finally {
    await conn.close();
  }
}

describe('leftovers of a killed test process', () => {
  test('names of live processes are not stale; names of dead ones are', () => {
    assert.equal(isStaleLabName(uniqueLabName('me')), false);
    assert.equal(isStaleLabName(`strata-test-${process.pid}-000000-1-earlier-run-same-pid`), true);
    assert.equal(isStaleLabName('strata-test-999999999-abcdef-1-dead'), true);
    assert.equal(isStaleLabName('strata-ui-demo'), false, 'not ours: never stale');
  });

  test('without autodestroy: the domain outlives the process until the sweeper destroys it and removes its images', async () => {
    const lab = await labOfKilledChild('keep');
    assert.ok(await domainExists(lab.name), 'the domain is still there after the kill');
    assert.ok(existsSync(lab.dir));
    const swept = await sweepStaleLabDomains();
    assert.ok(swept.domains.includes(lab.name), JSON.stringify(swept));
    assert.ok(swept.dirs.includes(lab.name), JSON.stringify(swept));
    assert.equal(await domainExists(lab.name), false);
    assert.equal(existsSync(lab.dir), false);
  });

  test('with autodestroy: libvirtd destroys the domain when the process dies; the sweeper removes the images', async () => {
    const lab = await labOfKilledChild('autodestroy');
    await waitFor(async () => !(await domainExists(lab.name)), { timeoutMs: 15_000, what: 'libvirtd to autodestroy the domain' });
    assert.ok(existsSync(lab.dir));
    const swept = await sweepStaleLabDomains();
    assert.ok(swept.dirs.includes(lab.name), JSON.stringify(swept));
    assert.equal(existsSync(lab.dir), false);
  });
});
