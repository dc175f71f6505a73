// Every block-job and domain-event symbol in libvirt's API description (shipped with libvirt-dev)
// is either bound by the addon or listed in native/coverage.json as left out, with a reason.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import type * as Native from '../../native/index.d.ts';

const lv = createRequire(import.meta.url)('../../native') as typeof Native;
const coverage = JSON.parse(readFileSync(new URL('../../native/coverage.json', import.meta.url), 'utf8')) as {
  functions: Record<string, string>;
  leftOutFunctions: Record<string, string>;
  events: Record<string, string>;
  leftOutEvents: Record<string, string>;
  enumTypes: string[];
};
const api = readFileSync('/usr/share/libvirt/api/libvirt-api.xml', 'utf8');

const libvirtFunctions = [...api.matchAll(/<function name='(vir[A-Za-z]+)'/g)]
  .map((m) => m[1] ?? '')
  .filter((n) => /^(virDomainBlock|virDomainGetBlock|virDomainSetBlock|virConnectDomainEvent(Register|Deregister))/.test(n));
const enumMembers = (type: string): string[] =>
  [...api.matchAll(new RegExp(`<enum name='([A-Z0-9_]+)' [^>]*type='${type}'`, 'g'))]
    .map((m) => m[1] ?? '')
    .filter((n) => !n.endsWith('_LAST'));

describe('coverage of libvirt’s block-job and domain-event API', () => {
  it('found the API description and its block-job functions', () => {
    assert.ok(libvirtFunctions.includes('virDomainBlockPull'));
    assert.ok(libvirtFunctions.length >= 15);
  });

  it('binds or deliberately leaves out every function', () => {
    const unaccounted = libvirtFunctions.filter((f) => !(f in coverage.functions) && !(f in coverage.leftOutFunctions));
    assert.deepEqual(unaccounted, [], 'add these to native/coverage.json: bound (Class.method) or left out with a reason');
    for (const [fn, reason] of Object.entries(coverage.leftOutFunctions)) assert.ok(reason.length > 10, `${fn} needs a reason`);
  });

  it('has every bound function as a method', () => {
    const classes: Record<string, { prototype: object }> = { Domain: lv.Domain, Connection: lv.Connection };
    for (const [fn, where] of Object.entries(coverage.functions)) {
      const [cls, method] = where.split('.') as [string, string];
      assert.equal(typeof (classes[cls]?.prototype as Record<string, unknown>)[method], 'function', `${fn} → ${where}`);
    }
  });

  it('exports every constant of the block-job enums by its C name', () => {
    for (const type of coverage.enumTypes) {
      for (const name of enumMembers(type)) assert.equal(typeof lv.constants[name], 'number', `${type}.${name}`);
    }
    for (const name of ['VIR_DOMAIN_BLOCK_COPY_BANDWIDTH', 'VIR_DOMAIN_BLOCK_COPY_GRANULARITY', 'VIR_DOMAIN_BLOCK_COPY_BUF_SIZE']) {
      assert.equal(typeof lv.constants[name], 'string', name);
    }
  });

  it('delivers every bound event and refuses the ones left out, naming them', async () => {
    const ids = enumMembers('virDomainEventID');
    const unaccounted = ids.filter((id) => !(id in coverage.events) && !(id in coverage.leftOutEvents));
    assert.deepEqual(unaccounted, [], 'add these event IDs to native/coverage.json');
    const conn = await lv.open('test:///default');
    try {
      for (const id of ids) {
        const value = lv.constants[id] as number;
        if (id in coverage.events) {
          const cb = await conn.domainEventRegisterAny(null, value as Native.BoundEventID, () => undefined);
          await conn.domainEventDeregisterAny(cb);
        } else {
          assert.throws(() => conn.domainEventRegisterAny(null, value as Native.BoundEventID, () => undefined), RangeError, id);
        }
      }
    } finally {
      await conn.close();
    }
  });
});
