// The desktop app's IPC checks and quit, over fakes of ipcMain, webContents and frames: no Electron.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import type { Reply } from '../../src/shared/bridge.ts';
import { channels } from '../../src/shared/channels.ts';
import type { EventName, StrataApi } from '../../src/shared/contract.ts';
import { Dispatcher } from '../../src/main/core/api/dispatcher.ts';
import { isAllowedExternalUrl } from '../../src/shared/links.ts';
import { appUrlCheck, sendShellEvent, serveIpc, type ContentsLike, type FrameLike, type InvokeEventLike, type IpcCore, type IpcMainLike } from '../../src/main/desktop/ipc-router.ts';
import { quitGate } from '../../src/main/desktop/quit-gate.ts';

const outDir = '/opt/strata/out';
const pageUrl = `${pathToFileURL(join(outDir, 'renderer/index.html')).href}#/domains`;

class FakeIpcMain implements IpcMainLike<InvokeEventLike> {
  readonly handlers = new Map<string, (event: InvokeEventLike, ...args: unknown[]) => Promise<Reply>>();
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => Promise<Reply>): void {
    assert.ok(!this.handlers.has(channel), `a second handler for ${channel}`);
    this.handlers.set(channel, listener);
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }
  invoke(event: InvokeEventLike, ...args: unknown[]): Promise<Reply> {
    const handler = this.handlers.get(channels.request);
    assert.ok(handler, 'no request handler');
    return handler(event, ...args);
  }
}

function fakeWindow(url = pageUrl) {
  const mainFrame: { url: string; parent: FrameLike | null } = { url, parent: null };
  const sent: unknown[][] = [];
  let destroyed = false;
  const contents: ContentsLike & { destroy(): void } = {
    mainFrame,
    isDestroyed: () => destroyed,
    send: (...args: unknown[]) => void sent.push(args),
    destroy: () => void (destroyed = true),
  };
  return { contents, mainFrame, sent };
}

function fakeCore() {
  const calls: { method: unknown; params: unknown }[] = [];
  const listeners = new Set<(event: EventName, data: unknown) => void>();
  const core: IpcCore = {
    dispatcher: {
      handle: async (method, params) => {
        calls.push({ method, params });
        return { ok: true, result: ['host'] };
      },
    },
    hub: {
      on: (l) => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
    },
  };
  const emit = (event: EventName, data: unknown): void => {
    for (const l of listeners) l(event, data);
  };
  return { core, calls, emit, listeners };
}

function setup() {
  const ipc = new FakeIpcMain();
  const win = fakeWindow();
  const c = fakeCore();
  const stop = serveIpc(c.core, ipc, win.contents, appUrlCheck({ outDir }));
  return { ipc, win, ...c, stop };
}

function assertRefused(reply: Reply, why: RegExp): void {
  assert.equal(reply.ok, false);
  if (reply.ok) return;
  assert.deepEqual(Object.keys(reply.error).sort(), ['hint', 'issues', 'kind', 'libvirt', 'message'], 'the envelope the WebSocket sends');
  assert.equal(reply.error.kind, 'invalid-request');
  assert.match(reply.error.message, why);
}

describe('IPC router', () => {
  it('a call from the window’s top frame on Strata’s page reaches the dispatcher', async () => {
    const t = setup();
    const reply = await t.ipc.invoke({ sender: t.win.contents, senderFrame: t.win.mainFrame }, 'hosts.list', {});
    assert.deepEqual(reply, { ok: true, result: ['host'] });
    assert.deepEqual(t.calls, [{ method: 'hosts.list', params: {} }]);
  });

  it('refuses another window (wrong sender)', async () => {
    const t = setup();
    const other = fakeWindow();
    assertRefused(await t.ipc.invoke({ sender: other.contents, senderFrame: other.mainFrame }, 'hosts.list', {}), /^refused: not from the Strata window$/);
    assert.deepEqual(t.calls, []);
  });

  it('refuses a frame that is not the window’s main frame, even at the same URL', async () => {
    const t = setup();
    const impostor: FrameLike = { url: pageUrl, parent: null };
    assertRefused(await t.ipc.invoke({ sender: t.win.contents, senderFrame: impostor }, 'hosts.list', {}), /not from the window's main frame/);
    assert.deepEqual(t.calls, []);
  });

  it('refuses a sub-frame', async () => {
    const t = setup();
    const sub: FrameLike = { url: pageUrl, parent: t.win.mainFrame };
    assertRefused(await t.ipc.invoke({ sender: t.win.contents, senderFrame: sub }, 'hosts.list', {}), /sub-frame/);
    assert.deepEqual(t.calls, []);
  });

  it('refuses the main frame once it shows another page (wrong URL)', async () => {
    const t = setup();
    for (const url of ['https://example.com/', 'file:///tmp/evil/index.html', 'about:blank', 'not a url']) {
      t.win.mainFrame.url = url;
      assertRefused(await t.ipc.invoke({ sender: t.win.contents, senderFrame: t.win.mainFrame }, 'hosts.list', {}), /not Strata's own/);
    }
    assert.deepEqual(t.calls, []);
  });

  it('refuses a frame that has gone', async () => {
    const t = setup();
    assertRefused(await t.ipc.invoke({ sender: t.win.contents, senderFrame: null }, 'hosts.list', {}), /has gone/);
  });

  it('pushes the core’s events on the event channel until stopped, and never to a destroyed window', () => {
    const t = setup();
    t.emit('host', { id: 'default' });
    assert.deepEqual(t.win.sent, [[channels.event, 'host', { id: 'default' }]]);
    t.win.contents.destroy();
    t.emit('host', { id: 'default' });
    assert.equal(t.win.sent.length, 1);
    t.stop();
    assert.equal(t.listeners.size, 0);
    assert.equal(t.ipc.handlers.size, 0);
  });

  it('the page can invoke the request channel only: the shell and event channels have no handler', () => {
    const t = setup();
    assert.deepEqual([...t.ipc.handlers.keys()], [channels.request]);
  });

  it('sends the shell’s events on their own channel, never to a destroyed window', () => {
    const t = setup();
    const event = { kind: 'show-job', jobId: 'default/web/vda/1', hostId: 'default', domain: 'web', disk: 'vda' } as const;
    assert.equal(sendShellEvent(t.win.contents, event), true);
    assert.deepEqual(t.win.sent, [[channels.shell, event]]);
    t.win.contents.destroy();
    assert.equal(sendShellEvent(t.win.contents, { kind: 'show-host', hostId: 'default' }), false);
    assert.equal(t.win.sent.length, 1);
  });

  it('behind the real dispatcher: accepted senders still get every request checked against the schema', async () => {
    const ipc = new FakeIpcMain();
    const win = fakeWindow();
    const reached: unknown[] = [];
    const api = { 'hosts.add': async (p: unknown) => void reached.push(p) } as unknown as StrataApi;
    serveIpc({ dispatcher: new Dispatcher(api), hub: { on: () => () => undefined } }, ipc, win.contents, appUrlCheck({ outDir }));
    const from = { sender: win.contents, senderFrame: win.mainFrame };
    for (const [method, params] of [
      ['hosts.add', { uri: 'qemu+ext:///system?command=/bin/sh' }],
      ['hosts.add', { uri: 'qemu:///system', extra: true }],
      ['hosts.add', 'qemu:///system'],
      ['app.quit', {}],
      [{ toString: () => 'hosts.add' }, { uri: 'qemu:///system' }],
    ] as const) {
      const reply = await ipc.invoke(from, method, params);
      assert.equal(reply.ok, false, JSON.stringify([method, params]));
      if (!reply.ok) assert.equal(reply.error.kind, 'invalid-request');
    }
    assert.deepEqual(reached, []);
    assert.equal((await ipc.invoke(from, 'hosts.add', { uri: 'qemu:///system' })).ok, true);
    assert.deepEqual(reached, [{ uri: 'qemu:///system', readOnly: false }]);
  });
});

describe('appUrlCheck', () => {
  it('accepts the built index.html with any fragment or query, nothing else on file://', () => {
    const ok = appUrlCheck({ outDir });
    assert.equal(ok(pageUrl), true);
    assert.equal(ok(pathToFileURL(join(outDir, 'renderer/index.html')).href + '?x=1'), true);
    assert.equal(ok(pathToFileURL(join(outDir, 'renderer/other.html')).href), false);
    assert.equal(ok('http://localhost:5173/'), false);
  });
  it('with the dev server: its origin only', () => {
    const ok = appUrlCheck({ outDir, devUrl: 'http://localhost:5173/' });
    assert.equal(ok('http://localhost:5173/src/index.html'), true);
    assert.equal(ok('http://localhost:5174/'), false);
    assert.equal(ok(pageUrl), false);
  });
});

describe('external links', () => {
  it('opens libvirt’s and QEMU’s documentation over https', () => {
    assert.equal(isAllowedExternalUrl('https://libvirt.org/kbase/backing_chains.html'), true);
    assert.equal(isAllowedExternalUrl('https://www.qemu.org/docs/master/'), true);
    assert.equal(isAllowedExternalUrl('https://qemu-project.gitlab.io/qemu/interop/live-block-operations.html'), true);
  });
  it('refuses http, other hosts, look-alikes, credentials, other paths and junk', () => {
    for (const url of [
      'http://libvirt.org/',
      'https://libvirt.org.evil.example/',
      'https://evil.example/libvirt.org',
      'https://user:pw@libvirt.org/',
      'https://qemu-project.gitlab.io/other/',
      'javascript:alert(1)',
      'file:///etc/passwd',
      'not a url',
    ]) {
      assert.equal(isAllowedExternalUrl(url), false, url);
    }
  });
});

describe('quitGate', () => {
  const event = () => {
    let prevented = 0;
    return { preventDefault: () => void prevented++, prevented: () => prevented };
  };

  it('holds the quit until closing ends, then exits once; quits asked for meanwhile are held too', async () => {
    let finish: () => void = () => undefined;
    const exits: boolean[] = [];
    const gate = quitGate(() => new Promise<void>((r) => (finish = r)), (closed) => exits.push(closed));
    const first = event();
    gate(first);
    const second = event();
    gate(second);
    assert.equal(first.prevented(), 1);
    assert.equal(second.prevented(), 1);
    assert.deepEqual(exits, []);
    finish();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(exits, [true]);
    const later = event();
    gate(later);
    assert.equal(later.prevented(), 0, 'once closed, a quit goes through');
  });

  it('exits anyway when closing hangs past the bound', async () => {
    const exits: boolean[] = [];
    const gate = quitGate(() => new Promise<void>(() => undefined), (closed) => exits.push(closed), 30);
    gate(event());
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(exits, [false]);
  });
});
