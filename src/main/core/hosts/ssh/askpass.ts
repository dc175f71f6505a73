// How ssh's questions reach Strata. libvirt starts `ssh` itself and passes it only a few variables
// of Strata's environment (SSH_ASKPASS and DISPLAY, but not SSH_ASKPASS_REQUIRE), so each
// connection attempt gets a folder of its own (mode 0700, a random name that serves as its
// one-time token, removed when the attempt ends) holding:
//  - `ssh`, which libvirt runs instead of ssh (the URI's `command` parameter): it sets
//    SSH_ASKPASS to the askpass beside it and SSH_ASKPASS_REQUIRE=force, so ssh asks through it
//    whether or not Strata has a terminal, and SSH_AUTH_SOCK to the user's agent when Strata's
//    environment lacks it (see agent.ts), then runs the real ssh with libvirt's arguments;
//  - `askpass`, which ssh runs with its question: it writes the question to the FIFO
//    `questions` and waits on a FIFO of its own for the answer Strata writes back.
// Both are POSIX shell: the packaged app has no Node to run a script with (its Electron cannot
// act as Node), and /bin/sh is on every host. Answers pass through FIFOs, never a file on disk, and
// never an argument a process list would show.
import { randomBytes } from 'node:crypto';
import { constants, open as openFd } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { log } from '../../../log/logger.ts';

const run = promisify(execFile);

export interface AskpassQuestion {
  /** The askpass process that asks, which the answer must name. */
  id: string;
  /** ssh's question, its line breaks kept. */
  text: string;
}

/** A shell word for `value` in single quotes. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function wrapperScript(dir: string, configFile: string | null, agentSocket: string | null, controlPath: string | null): string {
  return [
    '#!/bin/sh',
    "# Written by Strata for one connection attempt: ssh, asking every question through Strata's askpass.",
    `SSH_ASKPASS=${shellQuote(join(dir, 'askpass'))}`,
    'SSH_ASKPASS_REQUIRE=force',
    'export SSH_ASKPASS SSH_ASKPASS_REQUIRE',
    // libvirt passes Strata's own SSH_AUTH_SOCK on; this names the agent found when there is none.
    ...(agentSocket ? [`[ -n "$SSH_AUTH_SOCK" ] || { SSH_AUTH_SOCK=${shellQuote(agentSocket)}; export SSH_AUTH_SOCK; }`] : []),
    // The connection's ssh offers its login to the commands Strata runs on the host (its backup
    // files), so they need no login of their own while it is up.
    `exec ssh ${configFile ? `-F ${shellQuote(configFile)} ` : ''}${controlPath ? `-o ControlMaster=auto -o ${shellQuote(`ControlPath=${controlPath}`)} ` : ''}"$@"`,
    '',
  ].join('\n');
}

// The question goes out as one line, "<pid> <text>", its line breaks turned into RS (\036); the
// answer comes back as "1<answer>", "0" (declined: exit 1, which ssh takes as no answer) or "2"
// (declined, and the login ends: the askpass stops ssh, its parent, first). A declined password
// needs "2": ssh takes a failed askpass as an empty password, sends that and asks again.
function askpassScript(dir: string): string {
  return [
    '#!/bin/sh',
    "# Written by Strata for one connection attempt: ssh's SSH_ASKPASS, answered in Strata's window.",
    `dir=${shellQuote(dir)}`,
    'reply="$dir/reply.$$"',
    'umask 077',
    'mkfifo "$reply" || exit 1',
    'exec 3<>"$reply"',
    `printf '%s %s\\n' "$$" "$(printf '%s' "$1" | tr '\\n' '\\036')" > "$dir/questions" || { rm -f "$reply"; exit 1; }`,
    'IFS= read -r answer <&3',
    'status=$?',
    'exec 3<&-',
    'rm -f "$reply"',
    '[ "$status" -eq 0 ] || exit 1',
    'case $answer in',
    `  1*) printf '%s\\n' "\${answer#1}" ;;`,
    '  2) kill -TERM "$PPID" 2>/dev/null; exit 1 ;;',
    '  *) exit 1 ;;',
    'esac',
    '',
  ].join('\n');
}

/** The folder under which every attempt's folder is made: private to this user, one per Strata process. */
export class AskpassRoot {
  #dir: Promise<string> | null = null;
  #removed = false;

  get dir(): Promise<string> {
    // An attempt that starts while Strata stops would make the folder again, and leave it.
    if (this.#removed) return Promise.reject(new Error('Strata is stopping: no new SSH connection is made'));
    // XDG_RUNTIME_DIR is the user's own tmpfs (never written to a disk) where there is one.
    this.#dir ??= mkdtemp(join(process.env['XDG_RUNTIME_DIR'] || tmpdir(), 'strata-ssh-'));
    return this.#dir;
  }

  async remove(): Promise<void> {
    this.#removed = true;
    if (this.#dir) await rm(await this.#dir, { recursive: true, force: true });
    this.#dir = null;
  }
}

export class AskpassChannel {
  readonly dir: string;
  /** The program libvirt runs instead of ssh. */
  readonly sshCommand: string;
  readonly #questions: net.Socket;
  readonly #pending = new Set<string>();
  #closed = false;

  private constructor(dir: string, questions: net.Socket, onQuestion: (q: AskpassQuestion) => void) {
    this.dir = dir;
    this.sshCommand = join(dir, 'ssh');
    this.#questions = questions;
    let buffered = '';
    questions.setEncoding('utf8');
    questions.on('data', (chunk: string) => {
      buffered += chunk;
      let end: number;
      while ((end = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        const m = /^(\d+) ([\s\S]*)$/.exec(line);
        if (!m) continue;
        this.#pending.add(m[1]!);
        onQuestion({ id: m[1]!, text: m[2]!.replaceAll('\u001e', '\n') });
      }
    });
    questions.on('error', (err) => log.debug('reading askpass questions failed', { dir, err }));
  }

  /**
   * Makes the attempt's folder, scripts and FIFO; `onQuestion` hears every question ssh asks.
   * `agentSocket`: the user's agent, given to ssh when its environment names none. `controlPath`:
   * the ssh it runs serves other ssh commands' sessions there (ControlMaster auto).
   */
  static async open(root: AskpassRoot, configFile: string | null, agentSocket: string | null, onQuestion: (q: AskpassQuestion) => void, controlPath: string | null = null): Promise<AskpassChannel> {
    const dir = join(await root.dir, randomBytes(16).toString('hex'));
    await mkdir(dir, { mode: 0o700 });
    try {
      await writeFile(join(dir, 'ssh'), wrapperScript(dir, configFile, agentSocket, controlPath), { mode: 0o700 });
      await writeFile(join(dir, 'askpass'), askpassScript(dir), { mode: 0o700 });
      await run('mkfifo', ['-m', '600', join(dir, 'questions')]);
      // Read-write, so the FIFO never reports end of file between two askpass runs and opening it
      // never waits for a writer.
      const fd = await promisify(openFd)(join(dir, 'questions'), constants.O_RDWR | constants.O_NONBLOCK);
      return new AskpassChannel(dir, new net.Socket({ fd, readable: true, writable: false }), onQuestion);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Hands the answer (null: declined) to the askpass that asked; false when it is gone.
   * `endLogin`: a declined question also stops this ssh, which ends the connection attempt.
   */
  async answer(id: string, answer: string | null, options: { endLogin?: boolean } = {}): Promise<boolean> {
    if (!this.#pending.delete(id) || this.#closed) return false;
    return this.#reply(id, answer !== null ? `1${answer}\n` : options.endLogin ? '2\n' : '0\n');
  }

  async #reply(id: string, line: string): Promise<boolean> {
    try {
      // Non-blocking: the askpass holds its FIFO open for reading, so this never waits; it fails
      // (ENXIO, ENOENT) only when that askpass is gone.
      const handle = await open(join(this.dir, `reply.${id}`), constants.O_WRONLY | constants.O_NONBLOCK);
      try {
        await handle.write(line);
      } finally {
        await handle.close();
      }
      return true;
    } catch (err) {
      log.debug('an askpass question went away before its answer', { err });
      return false;
    }
  }

  /** Declines whatever is still asked (so no ssh waits for ever) and removes the folder. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#questions.destroy();
    const waiting = (await readdir(this.dir).catch(() => [])).flatMap((name) => /^reply\.(\d+)$/.exec(name)?.[1] ?? []);
    for (const id of new Set([...this.#pending, ...waiting])) await this.#reply(id, '0\n');
    this.#pending.clear();
    await rm(this.dir, { recursive: true, force: true });
  }
}
