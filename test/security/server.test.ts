// The headless server's door: the token, the Host and Origin checks against DNS rebinding and
// other sites in the same browser, the listening address. Real HTTP and WebSocket clients against
// the real server, over a core on libvirt's test driver (test:///default): no VM is touched.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { startHeadlessServer, type HeadlessServer } from '../../src/main/server/http-server.ts';
import { allowedHosts, exposedWarning, hostRefusal, isLoopback, parseListenAddress } from '../../src/main/server/listen-address.ts';
import { startTestCore, type TestCore } from '../core/core-harness.ts';
import { fuzz } from './fuzz.ts';
import { waitFor } from '../lab/harness.ts';
import { contentSecurityPolicyHeader } from '../../src/shared/csp.ts';

interface Answer {
  status: number;
  body: string;
  setCookie: string[];
  csp: string;
}

/** A GET with exactly these headers (fetch cannot set Host; node:http can). */
function get(port: number, path: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, setHost: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, setCookie: res.headers['set-cookie'] ?? [], csp: String(res.headers['content-security-policy']) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens a WebSocket; resolves with the socket, or with the HTTP status that refused it. */
function openSocket(port: number, path: string, headers: Record<string, string>): Promise<WebSocket | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** One request over an open socket; the reply. */
function call(ws: WebSocket, method: string, params: unknown): Promise<{ ok: boolean; result?: unknown }> {
  return new Promise((resolve) => {
    const id = Math.floor(Math.random() * 1e9);
    const onMessage = (raw: WebSocket.RawData): void => {
      const m = JSON.parse(raw.toString()) as { type: string; id?: number; ok: boolean; result?: unknown };
      if (m.type !== 'response' || m.id !== id) return;
      ws.off('message', onMessage);
      resolve(m);
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({ type: 'request', id, method, params }));
  });
}

describe('headless server: who may talk to it', () => {
  let t: TestCore;
  let server: HeadlessServer;
  let staticDir: string;
  let host: string;

  before(async () => {
    t = await startTestCore({ uri: 'test:///default' });
    staticDir = await mkdtemp(join(tmpdir(), 'strata-static-'));
    await writeFile(join(staticDir, 'index.html'), '<!doctype html><title>Strata</title>');
    server = await startHeadlessServer(t.core, { port: 0, staticDir });
    host = `127.0.0.1:${server.port}`;
  });
  after(async () => {
    await server?.close();
    await t?.close();
    await rm(staticDir, { recursive: true, force: true });
  });

  const withToken = (path = '/') => `${path}?token=${server.token}`;

  it('listens on loopback by default, and prints a loopback URL', () => {
    assert.match(server.url, new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/\\?token=[A-Za-z0-9_-]{32}$`));
  });

  it('serves the page with the token, by query (setting the cookie) or by cookie, under either loopback name', async () => {
    const byQuery = await get(server.port, withToken(), { host });
    assert.equal(byQuery.status, 200);
    assert.match(byQuery.body, /Strata/);
    assert.match(byQuery.setCookie.join(), /strata_token=.*HttpOnly; SameSite=Strict/);
    assert.equal(byQuery.csp, contentSecurityPolicyHeader, 'the page comes with the app’s CSP, frame-ancestors included');
    assert.equal((await get(server.port, '/', { host, cookie: `strata_token=${server.token}` })).status, 200);
    assert.equal((await get(server.port, withToken(), { host: `localhost:${server.port}` })).status, 200);
    assert.equal((await get(server.port, withToken(), { host: `LOCALHOST:${server.port}` })).status, 200);
  });

  it('refuses a request without the token, or with a wrong one of any length', async () => {
    const wrong = [
      '',
      'x',
      server.token.slice(0, -1),
      `${server.token}x`,
      server.token.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')),
      server.token.toUpperCase() === server.token ? server.token.toLowerCase() : server.token.toUpperCase(),
      '%00',
      'é'.repeat(16),
    ];
    assert.equal((await get(server.port, '/', { host })).status, 403);
    for (const token of wrong) {
      const byQuery = await get(server.port, `/?token=${encodeURIComponent(token)}`, { host });
      assert.equal(byQuery.status, 403, `token ${JSON.stringify(token)}`);
      assert.match(byQuery.body, /carries the access token/);
      assert.deepEqual(byQuery.setCookie, []);
      assert.equal((await get(server.port, '/', { host, cookie: `strata_token=${token}` })).status, 403);
    }
  });

  it('refuses a Host that is not its own, even with the token (DNS rebinding)', async () => {
    for (const h of [
      `evil.example:${server.port}`,
      'evil.example',
      `127.0.0.1:${server.port + 1}`,
      `localhost.evil.example:${server.port}`,
      `127.0.0.1:${server.port}.evil.example`,
      '127.0.0.1',
      `[::2]:${server.port}`,
      '',
    ]) {
      const answer = await get(server.port, withToken(), { host: h });
      assert.equal(answer.status, 403, `Host ${h}`);
      assert.match(answer.body, /is not this server/);
      assert.deepEqual(answer.setCookie, [], 'the token is not handed to a foreign name');
    }
  });

  it('refuses a request a foreign page sends (its Origin), even with the token', async () => {
    for (const origin of ['http://evil.example', `http://evil.example:${server.port}`, `https://127.0.0.1:${server.port}`, 'null', 'file://']) {
      assert.equal((await get(server.port, withToken(), { host, origin })).status, 403, `Origin ${origin}`);
    }
    assert.equal((await get(server.port, withToken(), { host, origin: `http://localhost:${server.port}` })).status, 200);
  });

  it('opens the WebSocket with the token and a page of its own, and it serves the contract', async () => {
    const ws = await openSocket(server.port, withToken('/ws'), { origin: `http://${host}` });
    assert.ok(ws instanceof WebSocket);
    const reply = await call(ws, 'hosts.list', {});
    assert.equal(reply.ok, true);
    ws.close();
    const byCookie = await openSocket(server.port, '/ws', { cookie: `strata_token=${server.token}` });
    assert.ok(byCookie instanceof WebSocket, 'a client that is not a browser sends no Origin');
    byCookie.close();
  });

  it('refuses a WebSocket without the token, with a wrong one, from a foreign Origin or Host, or on another path', async () => {
    const refusals: [string, Record<string, string>][] = [
      ['/ws', {}],
      ['/ws?token=', {}],
      [`/ws?token=${server.token.slice(1)}`, {}],
      ['/ws', { cookie: `strata_token=${server.token}x` }],
      [withToken('/ws'), { origin: 'http://evil.example' }],
      [withToken('/ws'), { origin: 'null' }],
      [withToken('/ws'), { host: `evil.example:${server.port}` }],
      [withToken('/ws'), { host: `rebound.evil.example:${server.port}`, origin: `http://rebound.evil.example:${server.port}` }],
      [withToken('/other'), {}],
    ];
    for (const [path, headers] of refusals) {
      assert.equal(await openSocket(server.port, path, headers), 403, `${path} ${JSON.stringify(headers)}`);
    }
  });

  it('answers a target that is no plain path, and lives on (`//%00` once ended the process)', async () => {
    const answers: Record<string, number> = {};
    for (const target of ['//', '//%00', `//%00?token=${server.token}`, `//a:b:c/?token=${server.token}`, '*', `http://evil.example/?token=${server.token}`]) {
      answers[target.replace(server.token, 'TOKEN')] = (await get(server.port, target, { host })).status;
      if (target.startsWith('/')) assert.equal(await openSocket(server.port, target, {}), 403, `upgrade ${target}`);
    }
    assert.deepEqual(answers, {
      '//': 403,
      '//%00': 403,
      '//%00?token=TOKEN': 404,
      '//a:b:c/?token=TOKEN': 404,
      '*': 400,
      'http://evil.example/?token=TOKEN': 400,
    });
    assert.equal((await get(server.port, withToken(), { host })).status, 200);
  });

  it('serves no file outside its folder, whatever the path (500 generated paths)', async () => {
    // A file beside the served folder, which a traversal would reach.
    const secret = join(staticDir, '..', `${staticDir.split('/').pop()}-secret.txt`);
    await writeFile(secret, 'the secret');
    try {
      const segment = fc.oneof(
        fc.constantFrom('..', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '..%2f', '%2f..', '%5c..', '..%5c', '%00', '.', '', 'index.html', `${staticDir.split('/').pop()}-secret.txt`),
        fc.stringMatching(/^[A-Za-z0-9._~-]{1,8}$/),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 8 }), async (segments) => {
          const answer = await get(server.port, `/${segments.join('/')}?token=${server.token}`, { host });
          assert.ok(!answer.body.includes('the secret'), `/${segments.join('/')} served the file outside`);
          assert.ok([200, 400, 404].includes(answer.status), `/${segments.join('/')}: ${answer.status}`);
        }),
        fuzz(500),
      );
    } finally {
      await rm(secret, { force: true });
    }
  });

  it('serves the page only when Host, Origin and token are all its own (600 generated header sets)', async () => {
    const printable = fc.stringMatching(/^[\x21-\x7e]{0,30}$/);
    const hostHeader = fc.oneof(fc.constantFrom(host, `localhost:${server.port}`, `127.0.0.1:${server.port + 1}`, `LOCALHOST:${server.port}`, `${host}.`, `[::1]:${server.port}`), printable);
    const origin = fc.option(fc.oneof(fc.constantFrom(`http://${host}`, `https://${host}`, `http://${host}/`, 'null'), printable.map((p) => `http://${p}`)), { nil: undefined });
    const token = fc.oneof(fc.constant(server.token), fc.constant(''), printable);
    await fc.assert(
      fc.asyncProperty(hostHeader, origin, token, fc.boolean(), async (h, o, tok, asCookie) => {
        const headers: Record<string, string> = { host: h, ...(o !== undefined ? { origin: o } : {}), ...(asCookie ? { cookie: `strata_token=${tok}` } : {}) };
        const answer = await get(server.port, asCookie ? '/' : `/?token=${encodeURIComponent(tok)}`, headers);
        const own = (v: string): boolean => [`127.0.0.1:${server.port}`, `localhost:${server.port}`, `[::1]:${server.port}`].includes(v.toLowerCase());
        const welcome = own(h) && (o === undefined || (o.startsWith('http://') && own(o.slice(7)))) && tok === server.token;
        assert.equal(answer.status, welcome ? 200 : 403, JSON.stringify(headers));
      }),
      fuzz(600),
    );
  });

  it('is still up and serving after every refusal', async () => {
    assert.equal((await get(server.port, withToken(), { host })).status, 200);
  });
});

describe('listening address', () => {
  it('takes an IP address or localhost, nothing else', () => {
    assert.equal(parseListenAddress('localhost'), '127.0.0.1');
    assert.equal(parseListenAddress('192.0.2.7'), '192.0.2.7');
    assert.equal(parseListenAddress('[::1]'), '::1');
    for (const bad of ['', 'example.org', '127.0.0.1:80', '999.1.1.1', '-x']) assert.equal(parseListenAddress(bad), null, bad);
    assert.equal(isLoopback('127.0.0.1'), true);
    assert.equal(isLoopback('127.4.5.6'), true);
    assert.equal(isLoopback('::1'), true);
    assert.equal(isLoopback('0.0.0.0'), false);
    assert.equal(isLoopback('192.0.2.7'), false);
  });

  it('accepts as Host the address it listens on, as well as loopback; an IPv6 one in brackets', () => {
    assert.equal(hostRefusal({ host: '192.0.2.7:8080' }, allowedHosts('192.0.2.7', 8080)), null);
    assert.equal(hostRefusal({ host: '[2001:db8::1]:8080' }, allowedHosts('2001:db8::1', 8080)), null);
    assert.equal(hostRefusal({ host: 'localhost' }, allowedHosts('127.0.0.1', 80)), null, 'port 80 goes unsaid');
    assert.match(hostRefusal({ host: '192.0.2.8:8080' }, allowedHosts('192.0.2.7', 8080)) ?? '', /not this server/);
  });

  const outward = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

  it(
    'npm run serve --listen on an outward address: a warning on stderr and in the log, and Host is that address',
    { skip: outward === undefined ? 'this machine has no outward IPv4 address' : false, timeout: 60_000 },
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'strata-data-'));
      const staticDir = await mkdtemp(join(tmpdir(), 'strata-static-'));
      await writeFile(join(staticDir, 'index.html'), '<!doctype html><title>Strata</title>');
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/server/cli.ts', '--uri', 'test:///default', '--listen', outward!], {
        env: { ...process.env, STRATA_DATA_DIR: dataDir, STRATA_RENDERER_DIR: staticDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        let stdout = '';
        let stderr = '';
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        const url = await new Promise<URL>((resolve, reject) => {
          child.stdout.on('data', (c: Buffer) => {
            stdout += c.toString();
            const m = /^Listening: (\S+)$/m.exec(stdout);
            if (m) resolve(new URL(m[1]!));
          });
          child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
        });
        assert.equal(url.hostname, outward);
        await waitFor(() => stderr.includes(exposedWarning(outward!)), { timeoutMs: 10_000, what: 'the warning about a non-loopback address on stderr' });
        assert.match(stderr, /the only protection.*unencrypted/s);
        const answer = await new Promise<number>((resolve, reject) => {
          const req = request({ host: outward, port: url.port, path: `/${url.search}` }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
        });
        assert.equal(answer, 200);
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
        const logs = await Promise.all(
          (await readdir(dataDir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile() && e.name.endsWith('.log')).map((e) => readFile(join(e.parentPath, e.name), 'utf8')),
        );
        assert.ok(logs.some((l) => l.includes('the only protection')), 'the warning is in the log');
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
        await rm(dataDir, { recursive: true, force: true });
        await rm(staticDir, { recursive: true, force: true });
      }
    },
  );

  it('npm run serve refuses a --listen that is not an address, before starting anything', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/server/cli.ts', '--listen', 'example.org'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 2);
    assert.match(stderr, /--listen must be an IP address/);
  });
});
