// One Strata per user: what a second launch hands over, and what the first does with its --uri,
// through the real dispatcher (so the contract's URI checks apply) over a fake service.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StrataApi } from '../../src/shared/contract.ts';
import type { HostInfo } from '../../src/shared/model.ts';
import { Dispatcher } from '../../src/main/core/api/dispatcher.ts';
import { appFlags } from '../../src/main/boot/flags.ts';
import { adoptUri, handOverData, receivedUri } from '../../src/main/desktop/single-instance.ts';

function host(id: string, uri: string, readOnly = false): HostInfo {
  return { id, uri, label: uri, readOnly, saved: id !== 'default', state: 'connected', reason: null, hint: null, retryAt: null, access: null, limits: { maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 0 } };
}

function fakeCore(initial: HostInfo[]) {
  const hosts = [...initial];
  const added: string[] = [];
  const api = {
    'hosts.list': async () => hosts,
    'hosts.add': async (p: { uri: string }) => {
      added.push(p.uri);
      const h = host(`h${hosts.length}`, p.uri);
      hosts.push(h);
      return h;
    },
  } as unknown as StrataApi;
  return { dispatcher: new Dispatcher(api), added };
}

describe('the hand-over', () => {
  it('the second launch sends its --uri, or null', () => {
    assert.deepEqual(handOverData(appFlags(['strata', '--uri', 'qemu:///session'])), { uri: 'qemu:///session' });
    assert.deepEqual(handOverData(appFlags(['strata'])), { uri: null });
  });

  it('the first reads additionalData first (argv may be reordered or empty), argv only without it', () => {
    assert.equal(receivedUri({ uri: 'qemu:///session' }, ['strata', '--uri', 'other:///']), 'qemu:///session');
    assert.equal(receivedUri({ uri: null }, ['strata', '--uri', 'other:///']), null, 'the second launch named no host');
    assert.equal(receivedUri(undefined, ['strata', '--uri', 'qemu:///system']), 'qemu:///system');
    assert.equal(receivedUri({ uri: 42 }, []), null);
    assert.equal(receivedUri(null, []), null);
  });
});

describe('adoptUri', () => {
  it('shows the host that already has the URI, without adding it again', async () => {
    const c = fakeCore([host('default', 'qemu:///system'), host('h1', 'qemu+ssh://root@kvm1/system')]);
    assert.deepEqual(await adoptUri('qemu+ssh://root@kvm1/system', c.dispatcher), { ok: true, event: { kind: 'show-host', hostId: 'h1' }, added: false });
    assert.deepEqual(await adoptUri('qemu:///system', c.dispatcher), { ok: true, event: { kind: 'show-host', hostId: 'default' }, added: false });
    assert.deepEqual(c.added, []);
  });

  it('adds a new URI through hosts.add, then shows it', async () => {
    const c = fakeCore([host('default', 'qemu:///system')]);
    assert.deepEqual(await adoptUri('qemu+tcp://10.0.0.5/system', c.dispatcher), { ok: true, event: { kind: 'show-host', hostId: 'h1' }, added: true });
    assert.deepEqual(c.added, ['qemu+tcp://10.0.0.5/system']);
  });

  it('a read-only host of that URI is not the one asked for: a writable one is added', async () => {
    const c = fakeCore([host('ro', 'qemu:///session', true)]);
    const r = await adoptUri('qemu:///session', c.dispatcher);
    assert.equal(r.ok && r.added, true);
  });

  it('refuses what the contract refuses (a command-running transport, an option-like host, junk), adding nothing', async () => {
    const c = fakeCore([host('default', 'qemu:///system')]);
    for (const uri of ['qemu+ext:///system?command=/bin/sh', 'qemu+ssh://-oProxyCommand=x/system', 'not a uri', '']) {
      const r = await adoptUri(uri, c.dispatcher);
      assert.equal(r.ok, false, uri);
      if (!r.ok) assert.match(r.message, /^hosts\.add: uri/, uri);
    }
    assert.deepEqual(c.added, []);
  });
});
