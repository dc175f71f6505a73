// A throw-away unprivileged user for tests that must not run as root: made with useradd (a unique
// name, a home under /tmp), given a runtime folder (XDG_RUNTIME_DIR, where libvirt's client puts
// the session daemon's socket) and a temporary folder of its own, and removed at the end with
// every process it started (its session libvirtd and QEMU) and its home. Users of runs that were
// killed are removed by the next run. Only root can do any of this.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, cp, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const NAME_RE = /^(strata-u-(\d+)-[0-9a-f]+):[^:]*:(\d+):(\d+):/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The processes whose real user is `uid`, from /proc (no procps needed). */
async function processesOf(uid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    // A process that ended between the listing and the read has nothing left to end.
    const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    if (new RegExp(`^Uid:\\s+${uid}\\s`, 'm').test(status)) pids.push(Number(entry));
  }
  return pids;
}

/** Ends every process of `uid` (its session libvirtd, QEMU) and waits until none is left. */
async function killAll(uid: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const pids = await processesOf(uid);
    if (pids.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes ${pids.join(', ')} of uid ${uid} are still there 15 s after SIGKILL`);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function removeUser(name: string, uid: number, home: string): Promise<void> {
  await killAll(uid);
  // userdel -r also removes the home; it warns (exit 12) when the mail spool it looks for is missing.
  await run('userdel', ['-r', name]).catch((err: { code?: number; stderr?: string }) => {
    if (err.code !== 12) throw new Error(`userdel -r ${name} failed: ${err.stderr ?? String(err)}`);
  });
  await rm(home, { recursive: true, force: true });
}

/** Removes users that killed runs left (their creating process is gone). */
export async function sweepThrowawayUsers(): Promise<string[]> {
  const removed: string[] = [];
  for (const line of (await readFile('/etc/passwd', 'utf8')).split('\n')) {
    const m = NAME_RE.exec(line);
    if (!m || alive(Number(m[2]))) continue;
    await removeUser(m[1]!, Number(m[3]), `/tmp/${m[1]}`);
    removed.push(m[1]!);
  }
  return removed;
}

export interface ThrowawayUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** The environment a login would give it, with its runtime and temporary folders. */
  env: NodeJS.ProcessEnv;
  /** Whether it can read `paths` (runs a check as the user). */
  canRead(paths: readonly string[]): Promise<boolean>;
  remove(): Promise<void>;
}

export async function createThrowawayUser(): Promise<ThrowawayUser> {
  const name = `strata-u-${process.pid}-${randomBytes(2).toString('hex')}`;
  const home = `/tmp/${name}`;
  await run('useradd', ['--create-home', '--home-dir', home, '--shell', '/bin/sh', '--user-group', '--comment', 'Strata test user, removed after the run', name]);
  try {
    const uid = Number((await run('id', ['-u', name])).stdout.trim());
    const gid = Number((await run('id', ['-g', name])).stdout.trim());
    // Private, as a desktop user's home usually is: the session's QEMU (this user) must still reach it.
    await chmod(home, 0o700);
    const runtime = join(home, 'run');
    const tmp = join(home, 'tmp');
    for (const dir of [runtime, tmp]) {
      await mkdir(dir, { mode: 0o700 });
      await chown(dir, uid, gid);
    }
    const env: NodeJS.ProcessEnv = {
      HOME: home,
      USER: name,
      LOGNAME: name,
      SHELL: '/bin/sh',
      PATH: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
      LANG: process.env['LANG'] ?? 'C.UTF-8',
      XDG_RUNTIME_DIR: runtime,
      TMPDIR: tmp,
    };
    return {
      name,
      uid,
      gid,
      home,
      env,
      canRead: (paths) =>
        run('runuser', ['-u', name, '--', process.execPath, '-e', 'for (const p of process.argv.slice(1)) require("fs").accessSync(p, require("fs").constants.R_OK)', ...paths], { env }).then(
          () => true,
          () => false,
        ),
      remove: () => removeUser(name, uid, home),
    };
  } catch (err) {
    const uid = Number((await run('id', ['-u', name]).catch(() => ({ stdout: '-1' }))).stdout.trim());
    if (uid > 0) await removeUser(name, uid, home);
    throw err;
  }
}

/**
 * A copy of what the tests need from the repository, readable by every user, for a clone the
 * user cannot enter (CI's under /root, mode 700). Hard links where the file system allows (the
 * files keep their owner and mode; only the new folders are opened), else a plain copy.
 */
export async function readableCopy(repoRoot: string, entries: readonly string[]): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp('/tmp/strata-repo-');
  try {
    for (const entry of entries) {
      const to = join(dir, entry);
      await run('cp', ['-al', join(repoRoot, entry), to]).catch(() => cp(join(repoRoot, entry), to, { recursive: true, preserveTimestamps: true }));
    }
    await chmod(dir, 0o755);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Runs a command (as `user` through runuser when given), its output lines prefixed as they come; resolves to the exit code and the output. */
export function runPrefixed(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; user?: string; timeoutMs: number; prefix: string },
): Promise<{ code: number | null; output: string }> {
  const [file, argv] = options.user ? ['runuser', ['-u', options.user, '--', command, ...args]] : [command, [...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(file as string, argv as string[], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let partial = '';
    const take = (chunk: Buffer): void => {
      output += chunk.toString();
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) process.stdout.write(`${options.prefix}${line}\n`);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (partial) process.stdout.write(`${options.prefix}${partial}\n`);
      resolve({ code, output });
    });
  });
}
