// The discovery's sweep when the connection closes part way through it. A fake connection stands
// in for libvirt because the case turns on the connection closing between two calls of one sweep
// (the definitions read, then the listing asked again), which a real daemon cannot be made to do
// on demand; a CI run met it once, as the host stopped while a sweep was under way.
import { describe, it } from 'node:test';
import { ChainIndex } from '../../src/main/core/chains/chain-index.ts';
import { DomainModel } from '../../src/main/core/chains/domain-model.ts';
import { parseDomainXml } from '../../src/main/core/chains/domain-xml.ts';
import { JobDiscovery } from '../../src/main/core/jobs/discovery.ts';
import type { JobTracker } from '../../src/main/core/jobs/job-tracker.ts';
import type { LibvirtConnection } from '../../src/main/libvirt/connection.ts';
import type { RawDomain } from '../../src/main/libvirt/types.ts';
import { StrataError } from '../../src/shared/errors.ts';
import { waitFor } from '../lab/wait.ts';

const xml = (top: string): string => `<domain type='kvm' id='1'><name>a</name><uuid>uuid-a</uuid><devices>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${top}' index='1'/><backingStore/><target dev='vda' bus='virtio'/></disk>
</devices></domain>`;

function fixture() {
  let top = '/v/a-1';
  let closed = false;
  let sweeps = 0;
  const domains: RawDomain[] = [{ name: 'a', uuid: 'uuid-a', state: 'running', active: true }];
  const conn = {
    listDomains: async () => {
      sweeps++;
      return domains;
    },
    domainXml: async () => xml(top),
    blockJobInfo: async () => null,
    domainsWithSnapshots: async () => new Set<string>(),
  } as unknown as LibvirtConnection;
  const model = new DomainModel({
    // As the host's listing does: through the connection, refused once it is closed.
    list: async () => {
      if (closed) throw new StrataError('unavailable', "Could not list the domains: this domain's connection is closed");
      return domains;
    },
    read: async () => ({ parsed: parseDomainXml(xml(top)), state: 'running' }),
    chains: new ChainIndex(),
    trustMs: 1,
  });
  const jobs = { running: () => [], active: () => false, observe: () => undefined, settleNow: () => undefined, wake: () => undefined, markReady: () => undefined } as unknown as JobTracker;
  const changed: string[] = [];
  const discovery = new JobDiscovery({ jobs, model, connection: () => conn, changed: (d) => changed.push(d), watched: () => true, intervalMs: 1 });
  return {
    conn,
    discovery,
    changed,
    sweeps: () => sweeps,
    /** The chain changes without an event, and the connection closes before the sweep lists the domains again. */
    snapshotThenClose() {
      top = '/v/a-2';
      closed = true;
    },
  };
}

describe('discovery sweep', () => {
  it('a sweep whose connection closes part way ends quietly, and the next sweep runs', async () => {
    const f = fixture();
    await f.discovery.reconcile(f.conn);
    f.snapshotThenClose();
    const before = f.sweeps();
    // The sweep reads the changed chain, tells it, then its refresh finds the connection closed.
    await waitFor(() => f.changed.includes('a'), { what: 'the changed chain told' });
    // Before the fix, that refusal escaped as an unhandled rejection, which fails this file.
    await waitFor(() => f.sweeps() >= before + 2, { what: 'a sweep after the failed one' });
    f.discovery.stop();
  });
});
