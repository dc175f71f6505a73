// A remote libvirt host for tests, made by the test itself: a forwarder from a random port on
// 127.0.0.1 to the local libvirtd's UNIX socket. `qemu+tcp://127.0.0.1:PORT/system` then goes
// through libvirt's remote driver (the client speaks libvirt's RPC protocol over TCP) and reaches
// the local daemon, which never has to listen on TCP itself.
//
// The daemon sees every forwarded connection as a UNIX client with this process's credentials:
// as root, one that needs no authentication. So that no other local user borrows them while a
// test runs, the forwarder accepts only connections whose client socket belongs to its own uid
// (read from /proc/net/tcp), and closes everything when the test closes it.
import { readFile, stat } from 'node:fs/promises';
import net from 'node:net';

const STANDARD_SOCKETS = ['/run/libvirt/libvirt-sock', '/var/run/libvirt/libvirt-sock', '/usr/local/var/run/libvirt/libvirt-sock'];

/** The UNIX sockets named libvirt-sock that something listens on (libvirtd, or virtproxyd). */
async function listeningLibvirtSockets(): Promise<string[]> {
  const table = await readFile('/proc/net/unix', 'utf8').catch(() => '');
  return table
    .split('\n')
    .map((line) => line.trim().split(/\s+/).at(7) ?? '')
    .filter((path) => path.endsWith('/libvirt-sock'));
}

/** The local libvirtd's read-write UNIX socket. */
export async function findLibvirtSocket(): Promise<string> {
  const candidates = [...new Set([...STANDARD_SOCKETS, ...(await listeningLibvirtSockets())])];
  for (const path of candidates) {
    if ((await stat(path).catch(() => null))?.isSocket()) return path;
  }
  throw new Error(`no libvirt UNIX socket found (looked at ${candidates.join(', ')}): is libvirtd running?`);
}

/** An IPv4 endpoint as /proc/net/tcp writes it: address bytes reversed, in hex, then the port. */
function procEndpoint(address: string, port: number): string {
  const hexAddress = address
    .split('.')
    .reverse()
    .map((b) => Number(b).toString(16).padStart(2, '0'))
    .join('');
  return `${hexAddress}:${port.toString(16).padStart(4, '0')}`.toUpperCase();
}

/** The uid that owns the client end of an accepted loopback connection. */
async function clientUid(accepted: net.Socket): Promise<number | undefined> {
  const client = procEndpoint(accepted.remoteAddress ?? '', accepted.remotePort ?? 0);
  const server = procEndpoint(accepted.localAddress ?? '', accepted.localPort ?? 0);
  const table = await readFile('/proc/net/tcp', 'utf8');
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === client && fields[2] === server) return Number(fields[7]);
  }
  return undefined;
}

export interface RemoteForwarder {
  /** qemu+tcp://ADDRESS:PORT/system */
  readonly uri: string;
  readonly port: number;
  /** The UNIX socket it forwards to. */
  readonly target: string;
  /** Drops whatever either side sends from now on: a silent link. */
  pause(): void;
  resume(): void;
  /** Forwards each chunk `ms` late. */
  delay(ms: number): void;
  /** Destroys every forwarded connection; new ones are still accepted. */
  cut(): void;
  /** Stops listening and destroys every forwarded connection. */
  close(): Promise<void>;
}

/**
 * Starts a forwarder on a random port of a loopback address (127.0.0.1 unless told: Strata counts
 * only 127.0.0.1 and localhost as this machine, so 127.0.0.2 stands for a host it cannot see into)
 * to the local libvirtd; close() it when done.
 */
export async function startRemoteForwarder(address = '127.0.0.1'): Promise<RemoteForwarder> {
  if (!address.startsWith('127.')) throw new Error(`the forwarder listens on loopback addresses only, not ${address}`);
  const target = await findLibvirtSocket();
  const sockets = new Set<net.Socket>();
  let paused = false;
  let delayMs = 0;

  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  };
  const forward = (from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (paused) return;
      if (delayMs > 0) setTimeout(() => to.write(chunk), delayMs);
      else to.write(chunk);
    });
  };

  const server = net.createServer((client) => {
    track(client);
    void clientUid(client).then(
      (uid) => {
        if (uid !== process.getuid?.() || client.destroyed) {
          client.destroy();
          return;
        }
        const upstream = net.connect(target);
        track(upstream);
        forward(client, upstream);
        forward(upstream, client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      },
      () => client.destroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, resolve);
  });
  const { port } = server.address() as net.AddressInfo;

  return {
    uri: `qemu+tcp://${address}:${port}/system`,
    port,
    target,
    pause: () => void (paused = true),
    resume: () => void (paused = false),
    delay: (ms) => void (delayMs = ms),
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
