// Every command of the contract under generated hostile requests, over both transports: Electron
// IPC (the router over a fake ipcMain, as the window calls it) and the headless server's real
// WebSocket. The core runs on libvirt's test driver (test:///default), so no VM is touched, and
// every service method is wrapped: a request the contract refuses must never reach one.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import type { Reply } from '../../src/shared/bridge.ts';
import { channels } from '../../src/shared/channels.ts';
import { methods, type Method } from '../../src/shared/contract.ts';
import type { ErrorEnvelope } from '../../src/shared/errors.ts';
import { appUrlCheck, serveIpc, type FrameLike, type InvokeEventLike, type IpcMainLike } from '../../src/main/desktop/ipc-router.ts';
import { parseXml, child } from '../../src/main/core/chains/xml-tree.ts';
import { escapeXml } from '../../src/main/libvirt/xml.ts';
import { startHeadlessServer, type HeadlessServer } from '../../src/main/server/http-server.ts';
import { startTestCore, type TestCore } from '../core/core-harness.ts';
import { assertPrototypesClean, fuzz, pollutionKeys } from './fuzz.ts';

type Params = Record<string, unknown>;
type A = fc.Arbitrary<unknown>;

// What a field accepts (a few valid values are enough to build a request around the bad one) and
// what it must refuse.
interface Field {
  valid: A;
  invalid: A;
  required: boolean;
}

const junk: A = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, [], {}, [[]], { 0: 'a' }),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
);
const notString: A = fc.oneof(junk, fc.integer(), fc.double());
const notNumber: A = fc.oneof(
  fc.constantFrom(null, true, false, '5', '', '0x10', [], {}, [1], Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
  fc.string({ maxLength: 10 }),
);
const notBoolean: A = fc.oneof(fc.constantFrom(null, 0, 1, 'true', 'false', '', [], {}), fc.integer(), fc.string({ maxLength: 5 }));
const long = (min: number): fc.Arbitrary<string> => fc.string({ minLength: min, maxLength: min + 50 }).map((s) => s.padEnd(min + 1, 'a'));
const control = fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c));
const withControl: A = fc.tuple(fc.string({ maxLength: 10 }), control, fc.string({ maxLength: 10 })).map(([a, c, b]) => `/${a}${c}${b}`);
const traversal = fc.constantFrom('../../etc/passwd', '..', '/..', '/var/../etc/shadow', '/a/b/..', '/tmp/../../root/.ssh/id_rsa');
const xmlMeta: fc.Arbitrary<string> = fc
  .array(fc.constantFrom('<', '>', '&', "'", '"', ']]>', '<!--', '&amp;', '<!ENTITY x SYSTEM "file:///etc/passwd">', 'a', ' ', 'é', '%00', '$(id)', '`id`', ';'), {
    minLength: 1,
    maxLength: 12,
  })
  .map((parts) => parts.join(''));

function notIn(values: readonly string[]): A {
  return fc.oneof(notString, fc.string({ maxLength: 12 }).filter((s) => !values.includes(s)), fc.constantFrom(...values.map((v) => v.toUpperCase()), ...values.map((v) => ` ${v}`)));
}

const hostId: Field = {
  // Mostly the one host there is, so that requests go on to domains and disks.
  valid: fc.oneof({ weight: 6, arbitrary: fc.constant('default') }, fc.constantFrom('nohost', ...pollutionKeys), fc.string({ minLength: 1, maxLength: 200 })),
  invalid: fc.oneof(notString, fc.constant(''), long(200)), required: true };
const domain: Field = {
  valid: fc.oneof({ weight: 3, arbitrary: fc.constant('test') }, fc.constantFrom('no-such-domain', ...pollutionKeys), xmlMeta.filter((n) => !n.includes('/'))),
  // '..' alone is a name libvirt allows, and Strata never makes a path of a domain's name.
  invalid: fc.oneof(notString, fc.constant(''), long(255), traversal.filter((p) => p.includes('/')), fc.string().map((s) => `${s}/x`), withControl),
  required: true,
};
const disk: Field = {
  valid: fc.oneof({ weight: 3, arbitrary: fc.constant('vda') }, fc.stringMatching(/^[a-z]{1,8}[a-z0-9]{0,8}$/)),
  invalid: fc.oneof(
    notString,
    fc.constantFrom('', '../etc', 'vda/../..', 'vda;rm', 'VDA', 'vda\u0000', '<vda>', 'vda ', '1vda', 'a'.repeat(17)),
    fc.string({ maxLength: 20 }).filter((s) => !/^[a-z]{1,8}[a-z0-9]{0,8}$/.test(s)),
  ),
  required: true,
};
const hugeOrFraction: A = fc.oneof(
  fc.constantFrom(-1, -0.5, 0.5, 2 ** 53, 2 ** 64, 1e308, -Number.MAX_VALUE, Number.MIN_VALUE),
  fc.integer({ max: -1 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
);
const bandwidth = (required: boolean): Field => ({
  valid: fc.oneof(fc.constantFrom(0, 1024, Number.MAX_SAFE_INTEGER), fc.maxSafeNat()),
  invalid: fc.oneof(notNumber, hugeOrFraction),
  required,
});
const layer: Field = {
  valid: fc.integer({ min: 0, max: 100_000 }),
  invalid: fc.oneof(notNumber, hugeOrFraction, fc.integer({ min: 100_001 })),
  required: false,
};
const destination = (required: boolean): Field => ({
  // In a folder that does not exist: nothing can be written, whatever a driver accepts.
  valid: xmlMeta.filter((n) => !n.includes('/')).map((n) => `/tmp/strata-fuzz-never/${n}.qcow2`),
  invalid: fc.oneof(
    notString,
    traversal,
    withControl,
    long(4096).map((s) => `/${s}`),
    fc.constantFrom('', '/', 'a.qcow2', './a.qcow2', '~/a.qcow2', 'C:\\a.qcow2', '/tmp/', '/tmp/a//', 'file:///tmp/a.qcow2'),
    fc.string({ maxLength: 30 }).map((s) => `rel/${s}`),
  ),
  required,
});
const bool: Field = { valid: fc.boolean(), invalid: notBoolean, required: false };
const afterReady: Field = { valid: fc.constantFrom('pivot', 'keep', 'wait'), invalid: notIn(['pivot', 'keep', 'wait']), required: false };

/** An operation object: valid ones of `kinds`, invalid ones of every sort. */
function operation(kinds: readonly string[]): Field {
  const shapes: Record<string, Record<string, Field>> = {
    pull: { base: layer },
    commit: { top: layer, base: layer, afterReady, deleteLayers: bool },
    copy: {
      destination: destination(true),
      format: { valid: fc.constantFrom('qcow2', 'raw'), invalid: notIn(['qcow2', 'raw']), required: false },
      shallow: bool,
      reuseExisting: bool,
      synchronousWrites: bool,
      afterReady,
    },
    snapshot: { destination: destination(false) },
  };
  const valid = fc.constantFrom(...kinds).chain((kind) => objectOf(shapes[kind]!).map((rest) => ({ kind, ...rest })));
  const invalid = fc.oneof(
    notString.filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
    fc.constant({}),
    fc.record({ kind: notIn(kinds) }),
    fc.constantFrom(...kinds).chain((kind) => corrupted(shapes[kind]!).map((rest) => ({ kind, ...rest }))),
  );
  return { valid, invalid, required: true };
}

const confirm: Field = {
  valid: fc.constantFrom([], ['drop-layers']),
  invalid: fc.oneof(
    notString.filter((v) => !Array.isArray(v) || v.length > 0),
    fc.array(notIn(['drop-layers', 'delete-files', 'reuse-existing-file', 'shared-layers', 'low-space']), { minLength: 1, maxLength: 3 }),
    fc.constant(['drop-layers', 'delete-files', 'reuse-existing-file', 'shared-layers', 'low-space', 'drop-layers']),
  ),
  required: false,
};

const diskRef = { hostId, domain, disk };
const shapes: Record<Method, Record<string, Field>> = {
  'hosts.list': {},
  'hosts.add': {
    uri: {
      valid: fc.constantFrom('test:///default'),
      invalid: fc.oneof(
        notString,
        fc.constantFrom('', 'qemu', '/var/run/libvirt/libvirt-sock', 'qemu:///system\n', 'qemu :///system', 'QEMU:///system', 'qemu+ext:///system?command=/bin/sh', 'qemu+ssh://-oProxyCommand=id/system'),
        long(1024).map((s) => `qemu:///${s.replace(/\s/g, 'a')}`),
      ),
      required: true,
    },
    label: { valid: fc.oneof(xmlMeta.filter((l) => l.length <= 100), fc.constantFrom(...pollutionKeys)), invalid: fc.oneof(notString, fc.constant(''), long(100), withControl), required: false },
    readOnly: bool,
  },
  'hosts.remove': { hostId },
  'hosts.retry': { hostId },
  'host.prompts': {},
  'host.answerPrompt': {
    hostId,
    promptId: { valid: fc.oneof(fc.uuid(), fc.constantFrom(...pollutionKeys), xmlMeta.filter((s) => s.length <= 100)), invalid: fc.oneof(notString, fc.constant(''), long(100)), required: true },
    answer: {
      valid: fc.oneof(xmlMeta, fc.string({ maxLength: 40 }).filter((s) => !/[\r\n\u0000]/.test(s)), fc.constant('trust')),
      invalid: fc.oneof(notString, long(4096), fc.constantFrom('a\nb', 'pass\r', 'nul\u0000')),
      required: false,
    },
    cancel: { valid: fc.constant(true), invalid: fc.oneof(notBoolean, fc.constant(false)), required: false },
  },
  'hosts.setLimits': {
    hostId,
    maxConcurrentJobs: { valid: fc.integer({ min: 0, max: 1000 }), invalid: fc.oneof(notNumber, hugeOrFraction, fc.integer({ min: 1001 })), required: true },
    bandwidthBudgetBytesPerSec: bandwidth(true),
  },
  'hosts.setSpaceGuard': {
    hostId,
    minFreeBytes: { valid: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), invalid: fc.oneof(notNumber, hugeOrFraction, fc.integer({ max: -1 })), required: true },
    minFreePercent: { valid: fc.double({ min: 0, max: 50, noNaN: true }), invalid: fc.oneof(notNumber, fc.double({ min: 50.001, noNaN: true }), fc.double({ max: -0.001, noNaN: true })), required: true },
    action: { valid: fc.constantFrom('throttle', 'abort'), invalid: notIn(['throttle', 'abort']), required: true },
  },
  'domain.ioPause': { hostId, domain },
  'domain.resume': { hostId, domain },
  'domains.list': { hostId },
  'domain.get': { hostId, domain },
  'jobs.list': { hostId: { ...hostId, required: false } },
  'operation.preview': { ...diskRef, operation: operation(['pull', 'commit', 'copy', 'snapshot']) },
  'job.start': {
    ...diskRef,
    operation: { ...operation(['pull', 'commit', 'copy']), invalid: fc.oneof(operation(['pull', 'commit', 'copy']).invalid, fc.constant({ kind: 'snapshot' })) },
    bandwidthBytesPerSec: bandwidth(false),
    confirm,
    whenBusy: { valid: fc.constantFrom('refuse', 'queue'), invalid: notIn(['refuse', 'queue']), required: false },
  },
  'job.pivot': diskRef,
  'job.setSpeed': { ...diskRef, bandwidthBytesPerSec: bandwidth(true) },
  'job.abort': diskRef,
  'job.removeLeftover': {
    hostId,
    jobId: {
      valid: fc.oneof(fc.constant('default/test/vda@1'), fc.constantFrom(...pollutionKeys), xmlMeta, traversal),
      invalid: fc.oneof(notString, fc.constant(''), long(1000), withControl),
      required: true,
    },
    confirm,
  },
  'disk.snapshot': {
    ...diskRef,
    destination: destination(false),
    name: { valid: fc.oneof(fc.constantFrom('before-upgrade', ...pollutionKeys), xmlMeta.filter((n) => !n.includes('/') && n.trim() === n)), invalid: fc.oneof(notString, fc.constant(''), long(200), withControl, fc.constant('a/b'), fc.constant(' padded ')), required: false },
  },
  'revert.preview': { ...diskRef, layer: destination(true), deleteFiles: bool },
  'disk.revert': { ...diskRef, layer: destination(true), deleteFiles: bool, confirm },
  'disk.grow': {
    ...diskRef,
    bytes: { valid: fc.integer({ min: 1, max: 2 ** 31 }).map((n) => n * 512), invalid: fc.oneof(notNumber, hugeOrFraction, fc.constantFrom(0, 513, 1)), required: true },
  },
  'chain.check': diskRef,
  'host.capabilities': { hostId },
  'lab.create': { hostId },
  'lab.remove': { hostId, domain },
  'history.list': {},
  'history.export': {},
  ...backupShapes(),
};

// The backup commands: sets are named by folder name, never a path; a location is an absolute folder.
function backupShapes(): Record<Extract<Method, `backup.${string}`>, Record<string, Field>> {
  const setId: Field = {
    valid: fc.oneof(fc.constant('20261203T160000000Z'), fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}$/)),
    invalid: fc.oneof(notString, fc.constantFrom('', '.', '..', '.hidden', 'a/b', '../x'), long(100), withControl),
    required: true,
  };
  const kind: Field = { valid: fc.constantFrom('auto', 'full'), invalid: notIn(['auto', 'full']), required: false };
  const disks: Field = { valid: fc.constant(['vda']), invalid: fc.oneof(notString.filter((v) => !Array.isArray(v) || v.length === 0 || typeof v[0] !== 'string'), fc.constant([]), fc.constant(['VDA'])), required: false };
  const point: Field = { valid: fc.integer({ min: 0, max: 100_000 }), invalid: fc.oneof(notNumber, hugeOrFraction), required: true };
  const keep: Field = { valid: fc.oneof(fc.constant(null), fc.integer({ min: 1, max: 1000 })), invalid: fc.constantFrom(0, -1, 0.5, '3', true, [], {}, 10 ** 9), required: false };
  const into: Field = { valid: fc.constantFrom('file', 'domain'), invalid: notIn(['file', 'domain']), required: false };
  const deleteOldChain: Field = { valid: fc.constant(['/var/lib/libvirt/images/old.qcow2']), invalid: fc.constantFrom('x', [''], ['rel/a'], ['/a/../b'], [1]), required: false };
  return {
    'backup.preview': { hostId, domain, disks, kind },
    'backup.start': { hostId, domain, disks, kind, bandwidthBytesPerSec: bandwidth(false) },
    'backup.list': { hostId, domain: { ...domain, required: false } },
    'backup.restorePreview': { hostId, domain, setId, point, disk, destination: destination(false), into },
    'backup.restore': { hostId, domain, setId, point, disk, destination: destination(false), into, deleteOldChain, bandwidthBytesPerSec: bandwidth(false), wait: bool },
    'backup.verify': { hostId, domain, setId },
    'backup.remove': { hostId, domain, setId, confirm: { valid: fc.constantFrom([], ['delete-files']), invalid: fc.oneof(notString.filter((v) => !Array.isArray(v) || v.length > 0), fc.constant(['drop-layers'])), required: false } },
    'backup.setLocation': { hostId, path: { ...destination(true), invalid: fc.oneof(notString, traversal, withControl, fc.constantFrom('', 'a', './b', '~/x')) } },
    'backup.settings': { hostId, domain: { ...domain, required: false } },
    'backup.setRetention': { hostId, domain, keepSets: keep, keepDays: keep },
    'backup.setSchedule': {
      hostId,
      domain,
      schedule: {
        valid: fc.oneof(fc.constant(null), fc.record({ every: fc.constantFrom('day', 'week'), at: fc.constantFrom('03:00', '23:59', '00:00') })),
        invalid: fc.oneof(fc.constantFrom(0, 'daily', [], { every: 'month', at: '03:00' }, { every: 'day', at: '24:00' }, { every: 'day', at: '3:00' }, { every: 'day' })),
        required: true,
      },
    },
  };
}

/** A valid object of `shape`: required fields always, optional ones sometimes. */
function objectOf(shape: Record<string, Field>): fc.Arbitrary<Params> {
  const entries = Object.entries(shape);
  if (entries.length === 0) return fc.constant({});
  return fc.tuple(...entries.map(([, f]) => (f.required ? f.valid : fc.option(f.valid, { nil: undefined })))).map((values) => {
    const out: Params = {};
    entries.forEach(([k], i) => {
      if (values[i] !== undefined) out[k] = values[i];
    });
    return out;
  });
}

const unknownKey = fc.oneof(fc.constantFrom(...pollutionKeys, 'hasOwnProperty', 'toString', 'polluted'), fc.string({ minLength: 1, maxLength: 12 }));
const pollutingValue = fc.oneof(fc.constant({ polluted: 'yes' }), fc.constant({ toString: 'x' }), fc.json().map((j) => JSON.parse(j) as unknown));

/** An object of `shape` with one thing wrong: a bad value, a required field missing, or an unknown key. */
function corrupted(shape: Record<string, Field>): fc.Arbitrary<Params> {
  const keys = Object.keys(shape);
  const choices: fc.Arbitrary<Params>[] = [
    fc.tuple(objectOf(shape), unknownKey.filter((k) => !keys.includes(k)), pollutingValue).map(([base, k, v]) => ({ ...base, [k]: v })),
  ];
  for (const [k, f] of Object.entries(shape)) {
    choices.push(fc.tuple(objectOf(shape), f.invalid).map(([base, v]) => ({ ...base, [k]: v })));
    if (f.required) {
      choices.push(
        objectOf(shape).map((base) => {
          const { [k]: _gone, ...rest } = base;
          return rest;
        }),
      );
    }
  }
  return fc.oneof(...choices);
}

/** What may stand for the whole parameters and is refused by every method. */
function invalidParams(m: Method): A {
  const shape = shapes[m];
  const required = Object.values(shape).some((f) => f.required);
  const whole: A = fc.oneof(
    fc.string({ maxLength: 10 }),
    fc.integer(),
    fc.constantFrom(true, false),
    fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
    // JSON sends NaN and Infinity as null, and no parameters at all are {}: valid where nothing is required.
    // (Electron's structured clone also carries a Map, a Date or bytes: none of them has the fields.)
    ...(required
      ? [fc.constantFrom(null, undefined, Number.NaN, Number.POSITIVE_INFINITY, new Map([['hostId', 'default']]), new Date(0), new Uint8Array(4))]
      : []),
  );
  return fc.oneof({ weight: 4, arbitrary: corrupted(shape) }, { weight: 1, arbitrary: whole });
}

const invalidMethod: A = fc.oneof(
  fc.constantFrom(...pollutionKeys, 'toString', 'hasOwnProperty', 'valueOf', 'hosts.list ', 'Hosts.list', 'hosts', '', 'hosts.list\u0000'),
  fc.string({ maxLength: 20 }).filter((s) => !(methods as string[]).includes(s)),
  fc.oneof(fc.integer(), fc.constant(null), fc.constant({}), fc.constant(['hosts.list'])),
);

const pageUrl = `${pathToFileURL('/opt/strata/out/renderer/index.html').href}#/`;

class FakeIpcMain implements IpcMainLike<InvokeEventLike> {
  handler: ((event: InvokeEventLike, ...args: unknown[]) => Promise<Reply>) | null = null;
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => Promise<Reply>): void {
    assert.equal(channel, channels.request);
    this.handler = listener;
  }
  removeHandler(): void {
    this.handler = null;
  }
}

interface Transport {
  name: string;
  request(method: unknown, params: unknown): Promise<Reply>;
}

const runs = { ipcPerMethod: 400, wsPerMethod: 150, validIpcPerMethod: 60, validWsPerMethod: 30, unknownMethods: 300, frames: 400, hostile: 150 } as const;

describe('the contract under hostile requests, over Electron IPC and the WebSocket', { timeout: 600_000 }, () => {
  let t: TestCore;
  let server: HeadlessServer;
  let staticDir: string;
  let ws: WebSocket;
  let stopIpc: () => void;
  const calls: Method[] = [];
  const transports: Transport[] = [];
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => void uncaught.push(err);
  let nextId = 1;

  before(async () => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    t = await startTestCore({ uri: 'test:///default' });
    // Every handler counts its calls; a refused request must leave the count as it was.
    const service = t.core.service as unknown as Record<Method, (p: unknown) => Promise<unknown>>;
    for (const m of methods) {
      const real = service[m].bind(service);
      service[m] = (p: unknown) => {
        calls.push(m);
        return real(p);
      };
    }

    const ipc = new FakeIpcMain();
    const mainFrame: FrameLike = { url: pageUrl, parent: null };
    const contents = { mainFrame, isDestroyed: () => false, send: () => undefined };
    stopIpc = serveIpc(t.core, ipc, contents, appUrlCheck({ outDir: '/opt/strata/out' }));
    transports.push({ name: 'IPC', request: (method, params) => ipc.handler!({ sender: contents, senderFrame: mainFrame }, method, params) });

    staticDir = await mkdtemp(join(tmpdir(), 'strata-static-'));
    await writeFile(join(staticDir, 'index.html'), '<!doctype html>');
    server = await startHeadlessServer(t.core, { port: 0, staticDir });
    ws = await connect();
    transports.push({ name: 'WebSocket', request: (method, params) => wsRequest(ws, method, params) });
  });

  after(async () => {
    ws?.close();
    stopIpc?.();
    await server?.close();
    await t?.close();
    await rm(staticDir, { recursive: true, force: true });
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  });

  function connect(): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`);
      socket.once('open', () => {
        // A socket the server closes for a bad frame may also report the reset; the close is the answer.
        socket.on('error', () => undefined);
        resolve(socket);
      });
      socket.once('error', reject);
    });
  }

  // JSON is what crosses the socket: an own "__proto__" key is written out as one, NaN as null.
  function wsRequest(socket: WebSocket, method: unknown, params: unknown): Promise<Reply> {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const onMessage = (raw: WebSocket.RawData): void => {
        const m = JSON.parse(raw.toString()) as { type: string; id?: number } & Reply;
        if (m.type !== 'response' || m.id !== id) return;
        socket.off('message', onMessage);
        socket.off('close', onClose);
        resolve(m.ok ? { ok: true, result: m.result } : { ok: false, error: m.error });
      };
      const onClose = (code: number): void => reject(new Error(`the socket closed (${code}) instead of answering`));
      socket.on('message', onMessage);
      socket.once('close', onClose);
      socket.send(`{"type":"request","id":${id},"method":${JSON.stringify(method) ?? 'null'},"params":${JSON.stringify(params) ?? 'null'}}`);
    });
  }

  function assertInvalid(reply: Reply, what: string): ErrorEnvelope {
    assert.equal(reply.ok, false, `${what} was accepted`);
    const error = (reply as { error: ErrorEnvelope }).error;
    assert.deepEqual(Object.keys(error).sort(), ['hint', 'issues', 'kind', 'libvirt', 'message']);
    assert.equal(error.kind, 'invalid-request', `${what}: ${error.kind} ${error.message}`);
    assert.equal(error.libvirt, null);
    return error;
  }

  const show = (v: unknown): string => fc.stringify(v).slice(0, 300);

  for (const transport of ['IPC', 'WebSocket'] as const) {
    const perMethod = transport === 'IPC' ? runs.ipcPerMethod : runs.wsPerMethod;
    it(`${transport}: every method refuses ${perMethod} invalid requests each, and no handler runs`, async () => {
      const tr = transports.find((x) => x.name === transport)!;
      for (const m of methods) {
        await fc.assert(
          fc.asyncProperty(invalidParams(m), async (params) => {
            const before = calls.length;
            const error = assertInvalid(await tr.request(m, params), `${m} ${show(params)}`);
            assert.ok(error.issues.length > 0 && error.message.startsWith(`${m}: `), error.message);
            assert.equal(calls.length, before, `${m} ${show(params)} reached the service`);
          }),
          fuzz(perMethod),
        );
      }
      assertPrototypesClean();
      assert.deepEqual(uncaught, []);
    });

    const validPerMethod = transport === 'IPC' ? runs.validIpcPerMethod : runs.validWsPerMethod;
    it(`${transport}: valid requests with odd values (${validPerMethod} per method) get a result or a reasoned refusal, never an internal error`, async (ctx) => {
      const tr = transports.find((x) => x.name === transport)!;
      const answers: Record<string, number> = {};
      for (const m of methods) {
        await fc.assert(
          fc.asyncProperty(objectOf(shapes[m]), async (params) => {
            const reply = await tr.request(m, params);
            const answer = reply.ok ? 'ok' : reply.error.kind;
            answers[answer] = (answers[answer] ?? 0) + 1;
            if (reply.ok) return;
            assert.deepEqual(Object.keys(reply.error).sort(), ['hint', 'issues', 'kind', 'libvirt', 'message']);
            assert.ok(['invalid-request', 'not-found', 'conflict', 'libvirt'].includes(reply.error.kind), `${m} ${show(params)}: ${reply.error.kind} ${reply.error.message}`);
          }),
          fuzz(validPerMethod),
        );
      }
      ctx.diagnostic(`answers: ${JSON.stringify(answers)}`);
      assertPrototypesClean();
      assert.deepEqual(uncaught, []);
    });

    it(`${transport}: unknown and prototype-named methods are refused (${runs.unknownMethods} names)`, async () => {
      const tr = transports.find((x) => x.name === transport)!;
      await fc.assert(
        fc.asyncProperty(invalidMethod, fc.anything({ maxDepth: 2 }), async (method, params) => {
          const before = calls.length;
          const error = assertInvalid(await tr.request(method, params), `method ${show(method)}`);
          assert.match(error.message, /^unknown method/);
          assert.equal(calls.length, before);
        }),
        fuzz(runs.unknownMethods),
      );
      assertPrototypesClean();
    });

    it(`${transport}: names and paths with XML metacharacters pass the contract and come back not-found, not injected (${runs.hostile} each)`, async () => {
      const tr = transports.find((x) => x.name === transport)!;
      const hostileName = fc.oneof(xmlMeta.filter((n) => !n.includes('/')), fc.constantFrom('<!ENTITY x SYSTEM "passwd">&x;', ...pollutionKeys, '<domain><name>test<', ']]><name>test', "test' or '1'='1", 'test\u007f', '\u202etest'));
      await fc.assert(
        fc.asyncProperty(hostileName, async (name) => {
          const before = calls.length;
          for (const [method, params] of [
            ['domain.get', { hostId: 'default', domain: name }],
            ['operation.preview', { hostId: 'default', domain: name, disk: 'vda', operation: { kind: 'pull' } }],
            ['job.start', { hostId: 'default', domain: name, disk: 'vda', operation: { kind: 'pull' } }],
            ['disk.snapshot', { hostId: 'default', domain: name, disk: 'vda' }],
          ] as const) {
            const reply = await tr.request(method, params);
            assert.equal(reply.ok, false);
            const error = (reply as { error: ErrorEnvelope }).error;
            assert.equal(error.kind, 'not-found', `${method} ${show(name)}: ${error.kind} ${error.message}`);
            assert.equal(error.libvirt?.code, 'VIR_ERR_NO_DOMAIN');
          }
          assert.equal(calls.length, before + 4, 'valid requests do reach the service');
        }),
        fuzz(runs.hostile),
      );
      // On the test driver's own domain: a copy's destination is taken whole, metacharacters included.
      await fc.assert(
        fc.asyncProperty(xmlMeta, async (s) => {
          const dest = `/tmp/strata-fuzz-never/${s}.qcow2`;
          const reply = await tr.request('operation.preview', { hostId: 'default', domain: 'test', disk: 'vda', operation: { kind: 'copy', destination: dest } });
          assert.ok(reply.ok, JSON.stringify(reply));
          assert.equal((reply.result as { created: { path: string } }).created.path, dest);
        }),
        fuzz(runs.hostile),
      );
      assertPrototypesClean();
    });
  }

  it(`WebSocket: frames that are not requests close that socket only; the server lives on (${runs.frames} frames)`, async () => {
    const frame = fc.oneof(
      fc.string({ maxLength: 60, unit: 'binary' }),
      fc.json().filter((j) => {
        const v = JSON.parse(j) as { type?: unknown; id?: unknown } | null;
        return typeof v !== 'object' || v === null || v.type !== 'request' || !Number.isSafeInteger(v.id);
      }),
      fc.constantFrom(
        '{"type":"request","id":1.5,"method":"hosts.list"}',
        '{"type":"request","id":1e400,"method":"hosts.list"}',
        '{"type":"request","id":"1","method":"hosts.list"}',
        '{"__proto__":{"type":"request","id":1},"method":"hosts.list"}',
        '[',
        '\u0000',
      ),
    );
    await fc.assert(
      fc.asyncProperty(frame, async (text) => {
        const socket = await connect();
        const closed = new Promise<number>((resolve) => socket.once('close', resolve));
        socket.send(text);
        assert.equal(await closed, 1003, `frame ${JSON.stringify(text)}`);
      }),
      fuzz(runs.frames),
    );
    const reply = await wsRequest(ws, 'hosts.list', {});
    assert.ok(reply.ok, 'the first socket still answers');
    assertPrototypesClean();
    assert.deepEqual(uncaught, []);
  });

  it('WebSocket: a message over 1 MiB closes the socket, and the server lives on', async () => {
    const socket = await connect();
    const closed = new Promise<number>((resolve) => socket.once('close', resolve));
    socket.send(JSON.stringify({ type: 'request', id: 1, method: 'domain.get', params: { hostId: 'default', domain: 'x'.repeat(2 << 20) } }));
    assert.equal(await closed, 1009);
    assert.ok((await wsRequest(ws, 'hosts.list', {})).ok);
  });

  it('a valid request still works after all of it', async () => {
    for (const tr of transports) {
      const reply = await tr.request('domain.get', { hostId: 'default', domain: 'test' });
      assert.ok(reply.ok, tr.name);
    }
  });
});

describe('the XML Strata writes to libvirt', () => {
  it('takes any destination whole: escaped, it reads back as the same path (2000 paths)', () => {
    fc.assert(
      fc.property(fc.oneof(xmlMeta, fc.string({ unit: 'binary', maxLength: 40 })), (s) => {
        const path = `/images/${s}`;
        // The shape blockCopy and snapshotDisk give libvirt (src/main/libvirt/connection.ts).
        const xml = `<disk type='file'><source file='${escapeXml(path)}'/><driver type='qcow2'/></disk>`;
        const root = parseXml(xml);
        assert.equal(child(root, 'source')?.attrs.get('file'), path);
        assert.equal(root.children.length, 2, 'no element was injected');
      }),
      fuzz(2000),
    );
  });
});
