// The stress run's job churn: real block jobs and the events they raise, round after round on
// one lab domain, as the engine drives them: a new layer (disk-only snapshot), a pull at 1 MiB/s
// whose limit changes before it is aborted, then an active commit of the new layer into the one
// below, pivoted at ready, with its file deleted. Each round also registers a listener of its own
// for the domain's job events and drops it at the end, beside listeners that stay for the whole
// phase, so per-event payloads, per-registration fan-outs and per-call references are all made
// and freed hundreds of times under LeakSanitizer.
import { join } from 'node:path';
import type { LabDomain } from '../../src/main/core/lab/lab.ts';
import { MiB } from '../../src/main/core/lab/images.ts';
import { expectOk, fail, lv, n, ok, phase, sleep, tally, type Connection } from './kit.mts';

type JobEvent = { disk: string | null; type: number; status: number };

export async function jobChurn(conn: Connection, lab: LabDomain): Promise<void> {
  const rounds = n(150);
  const done = phase(`job churn: ${rounds} rounds of snapshot, pull, setSpeed, abort, active commit, pivot`);
  const dom = lab.domain;
  const events: JobEvent[] = [];
  let allEvents = 0;
  const wholeId = await conn.domainEventRegisterAny(null, lv.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, () => void allEvents++);
  const pathId = await conn.domainEventRegisterAny(dom, lv.VIR_DOMAIN_EVENT_ID_BLOCK_JOB, () => undefined);
  const lifeId = await conn.domainEventRegisterAny(null, lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE, () => undefined);
  const until = async (what: string, status: number): Promise<boolean> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const i = events.findIndex((e) => e.disk === 'vda' && e.status === status);
      if (i >= 0) {
        events.splice(0, i + 1);
        return true;
      }
      if (Date.now() > deadline) {
        fail(what, `no event with status ${status} in 60 s; seen: ${events.map((e) => e.status).join(',') || 'none'}`);
        return false;
      }
      await sleep(10);
    }
  };
  let delivered = 0;
  for (let round = 0; round < rounds; round++) {
    events.length = 0;
    const roundId = await expectOk('register a round listener', () =>
      conn.domainEventRegisterAny(dom, lv.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, (e) => {
        delivered++;
        events.push({ disk: e.disk, type: e.type, status: e.status });
      }),
    );
    if (roundId === undefined) break;
    const layer = join(lab.dir, `churn-${round}.qcow2`);
    const xml =
      `<domainsnapshot><disks><disk name='vda' snapshot='external' type='file'><driver type='qcow2'/>` +
      `<source file='${layer}'/></disk></disks></domainsnapshot>`;
    const snapshotFlags = lv.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | lv.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA | lv.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
    const snap = await expectOk('snapshotCreateXML disk-only', () => dom.snapshotCreateXML(xml, snapshotFlags));
    if (!snap) break;
    await expectOk('blockPull 1 MiB/s', () => dom.blockPull('vda', MiB, lv.VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES));
    await expectOk('blockJobSetSpeed 2 MiB/s', () => dom.blockJobSetSpeed('vda', 2 * MiB, lv.VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES));
    await expectOk('blockJobInfo', () => dom.blockJobInfo('vda', lv.VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES));
    await expectOk('blockJobAbort async', () => dom.blockJobAbort('vda', lv.VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC));
    tally.calls++;
    if (!(await until('pull cancelled event', lv.VIR_DOMAIN_BLOCK_JOB_CANCELED))) break;
    ok('pull cancelled event');
    // libvirt 9.0 may list an ended job a moment after its event (fixed in 9.1).
    for (let i = 0; i < 100 && Object.keys(await dom.blockJobInfo('vda', 0)).length > 0; i++) await sleep(20);
    const commitFlags = lv.VIR_DOMAIN_BLOCK_COMMIT_ACTIVE | lv.VIR_DOMAIN_BLOCK_COMMIT_SHALLOW | lv.VIR_DOMAIN_BLOCK_COMMIT_DELETE;
    await expectOk('blockCommit active', () => dom.blockCommit('vda', null, null, 0, commitFlags));
    tally.calls++;
    if (!(await until('commit ready event', lv.VIR_DOMAIN_BLOCK_JOB_READY))) break;
    ok('commit ready event');
    await expectOk('blockJobAbort pivot', () => dom.blockJobAbort('vda', lv.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT));
    tally.calls++;
    if (!(await until('commit completed event', lv.VIR_DOMAIN_BLOCK_JOB_COMPLETED))) break;
    ok('commit completed event');
    await expectOk('XMLDesc', () => dom.XMLDesc(0), (x) => (x.includes(`churn-${round}.qcow2`) ? `churn-${round}.qcow2 still in the chain` : null));
    await expectOk('stats block backing', () => dom.stats(lv.VIR_DOMAIN_STATS_BLOCK, lv.VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING));
    await expectOk('deregister the round listener', () => conn.domainEventDeregisterAny(roundId), (v) => (v === 0 ? null : `gave ${v}`));
  }
  await conn.domainEventDeregisterAny(wholeId);
  await conn.domainEventDeregisterAny(pathId);
  await conn.domainEventDeregisterAny(lifeId);
  tally.calls++;
  if (delivered > 0 && allEvents >= delivered) ok('job events delivered to both listeners', delivered);
  else fail('job events delivered to both listeners', `${delivered} to the round listeners, ${allEvents} to the connection-wide one`);
  done();
}
