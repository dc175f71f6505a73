// Why a local libvirt daemon (qemu:///system, qemu:///session, a ?socket= path) refused this
// user, by kind, with the fixes that fit: a missing socket or a dead daemon (start it), a group
// this login is not in (join it, then log in again), polkit that said no or cannot be asked. The
// kind comes from libvirt's words and the socket itself (owner, group, mode), never from guesses
// about the distribution.
import { readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { AccessFix, AccessProblemKind } from '../../../shared/access.ts';
import { libvirtCode } from '../../libvirt/error-code.ts';
import { accessProblem, NeedsUserError, type AttemptContext } from './needs-user.ts';

/** The system D-Bus socket polkit is reached through: its appearance is worth a new try. */
const systemBusSocket = '/run/dbus/system_bus_socket';

export interface LocalUri {
  /** 'system' or 'session' (the URI's path), or another path a driver uses. */
  instance: string;
  /** The socket the client connects to when the URI names one (?socket=). */
  socket: string | null;
}

/** A URI that reaches a daemon on this machine through its UNIX socket; null for any other. */
export function localUri(uri: string): LocalUri | null {
  const m = /^[a-z][a-z0-9]*(\+unix)?:\/\/\/([^?#]*)(\?[^#]*)?$/.exec(uri);
  if (!m) return null;
  const socket = new URLSearchParams(m[3] ?? '').get('socket');
  return { instance: (m[2] ?? '').replace(/\/+$/, ''), socket };
}

/** Where libvirt's client looks for the daemon's socket of this instance (its default paths). */
export function defaultSocket(local: LocalUri, env: NodeJS.ProcessEnv = process.env): string {
  if (local.socket) return local.socket;
  if (local.instance === 'session') {
    const runtime = env['XDG_RUNTIME_DIR'] || join(env['HOME'] || userInfo().homedir, '.cache');
    return join(runtime, 'libvirt', 'libvirt-sock');
  }
  return '/run/libvirt/libvirt-sock';
}

interface SocketFacts {
  gid: number;
  mode: number;
}

function socketFacts(path: string): SocketFacts | null {
  try {
    const s = statSync(path);
    return { gid: s.gid, mode: s.mode & 0o777 };
  } catch {
    return null;
  }
}

/** The name of a group and whether /etc/group lists `user` in it. */
export function groupEntry(gid: number, user: string, groupFile: string): { name: string; listed: boolean } | null {
  for (const line of groupFile.split('\n')) {
    const [name, , id, members] = line.split(':');
    if (name && id === String(gid)) return { name, listed: (members ?? '').split(',').includes(user) };
  }
  return null;
}

/** The same for a group named `name` (the libvirt group may exist where the socket does not use it). */
function namedGroup(name: string, user: string, groupFile: string): { gid: number; listed: boolean } | null {
  for (const line of groupFile.split('\n')) {
    const [n, , id, members] = line.split(':');
    if (n === name && id) return { gid: Number(id), listed: (members ?? '').split(',').includes(user) };
  }
  return null;
}

export interface LocalContext {
  /** This process's user name, uid and groups (getgroups: what this login has, not /etc/group). */
  user: string;
  uid: number;
  groups: readonly number[];
  groupFile: string;
  env: NodeJS.ProcessEnv;
}

function readGroupFile(): string {
  try {
    return readFileSync('/etc/group', 'utf8');
  } catch {
    // No group file (a minimal container): no group can be named.
    return '';
  }
}

function processContext(): LocalContext {
  return {
    user: userInfo().username,
    uid: process.getuid?.() ?? -1,
    groups: process.getgroups?.() ?? [],
    groupFile: readGroupFile(),
    env: process.env,
  };
}

const sessionFix: AccessFix = {
  label:
    'Use qemu:///session instead: your own libvirt, started for you, where QEMU runs as you and needs no group or polkit. ' +
    "It shows only your own VMs, not the system's; its images usually live under ~/.local/share/libvirt/images; its guests get user-mode networking only.",
  command: null,
  uri: 'qemu:///session',
};

function groupFix(user: string, group: string): AccessFix {
  return {
    label:
      `Join the ${group} group, then log out and in again: groups are read at login (until then, \`newgrp ${group}\` gives it to one terminal). ` +
      `Members of ${group} can do anything root can through libvirt (a VM may read or write any file), so it is root-equivalent.`,
    command: `sudo usermod -aG ${group} ${user}`,
    uri: null,
  };
}

const startDaemonFixes: AccessFix[] = [
  {
    label: "Start libvirt's daemon; Strata connects as soon as its socket appears.",
    command: 'sudo systemctl enable --now libvirtd',
    uri: null,
  },
  {
    label: 'On installs with per-driver daemons (Fedora, recent Debian with virtqemud), start the QEMU driver\'s socket instead. Without systemd: sudo libvirtd -d.',
    command: 'sudo systemctl enable --now virtqemud.socket',
    uri: null,
  },
];

function needs(uri: string, message: string, kind: AccessProblemKind, hint: string, fixes: AccessFix[], watching: string[], cause: unknown): NeedsUserError {
  return new NeedsUserError(`cannot connect to ${uri}: ${message}`, hint, accessProblem(kind, message, fixes, watching), { cause });
}

/**
 * The classifier for local daemons: null for a remote URI, for a failure that retrying may cure
 * (a daemon that vanished after the host was connected: it may be restarting), and for words it
 * does not know.
 */
export function localAccessProblem(err: unknown, attempt: AttemptContext, ctx: LocalContext = processContext()): NeedsUserError | null {
  const local = localUri(attempt.uri);
  if (!local) return null;
  const message = err instanceof Error ? err.message : String(err);
  const code = libvirtCode(err) ?? '';
  const named = /socket to '([^']+)'/.exec(message)?.[1];
  const socket = named ?? defaultSocket(local, ctx.env);
  const session = local.instance === 'session';
  const offerSession = !session && ctx.uid !== 0 ? [sessionFix] : [];
  const libvirtGroup = namedGroup('libvirt', ctx.user, ctx.groupFile);
  const joinLibvirt = libvirtGroup && !ctx.groups.includes(libvirtGroup.gid) ? [groupFix(ctx.user, 'libvirt')] : [];

  if (/: No such file or directory$/.test(message) && named !== undefined) {
    if (attempt.afterLoss) return null;
    if (session) {
      return needs(attempt.uri, message, 'socket-missing', "libvirt's client starts your session daemon by itself, and it did not start: check that libvirtd is installed (Debian: libvirt-daemon).", [{ label: 'Install the daemon: the session instance is the same program, run as you.', command: 'sudo apt-get install libvirt-daemon', uri: null }], [socket], err);
    }
    return needs(attempt.uri, message, 'socket-missing', `libvirtd is not running here (its socket ${socket} is missing): start it${offerSession.length ? ', or use qemu:///session' : ''}. Strata connects when the socket appears.`, [...startDaemonFixes, ...offerSession], [socket], err);
  }
  if (/: Connection refused$/.test(message) && named !== undefined) {
    if (attempt.afterLoss) return null;
    return needs(attempt.uri, message, 'daemon-not-running', `Nothing answers on ${socket}: libvirtd stopped or crashed. Start it; Strata connects when it is back.`, [...startDaemonFixes, ...offerSession], [socket], err);
  }
  if (/: Permission denied$/.test(message) && named !== undefined) {
    const facts = socketFacts(socket);
    const group = facts ? groupEntry(facts.gid, ctx.user, ctx.groupFile) : null;
    if (facts && group && (facts.mode & 0o060) === 0o060 && !ctx.groups.includes(facts.gid)) {
      if (group.listed) {
        return needs(attempt.uri, message, 'group-needs-login', `You are in the ${group.name} group now, but this login started before you joined: log out and in again (or start Strata from \`newgrp ${group.name}\`).`, [{ label: `Log out and in again, so that this login gets the ${group.name} group.`, command: null, uri: null }, ...offerSession], [], err);
      }
      return needs(attempt.uri, message, 'not-in-group', `Only members of the ${group.name} group may use ${socket}: join it (sudo usermod -aG ${group.name} ${ctx.user}), then log in again; or use qemu:///session.`, [groupFix(ctx.user, group.name), ...offerSession], [], err);
    }
    return needs(attempt.uri, message, 'permission', `${socket} does not let this user in (mode ${(facts?.mode ?? 0).toString(8)}).`, [...joinLibvirt, ...offerSession], [], err);
  }
  if (/system bus connection|no polkit agent|polkit.*(unavailable|not available)/i.test(message) || code === 'VIR_ERR_AUTH_UNAVAILABLE') {
    const noBus = /system bus connection/i.test(message);
    const why = noBus
      ? "libvirtd runs, but lets a user who is not root in only after asking polkit, and polkit cannot be asked: the system D-Bus is not running"
      : 'libvirtd runs, but lets a user who is not root in only after asking polkit, and polkit has no agent to ask you with (no desktop session)';
    const fixes: AccessFix[] = [
      ...offerSession,
      ...(noBus ? [{ label: 'Start the system D-Bus and polkit, so libvirtd can ask; polkit lets members of the libvirt group in without a prompt.', command: 'sudo systemctl start dbus polkit', uri: null }] : []),
      ...joinLibvirt,
    ];
    return needs(attempt.uri, message, 'polkit-unavailable', `${why}. ${offerSession.length ? 'Use qemu:///session, or ' : ''}ask an administrator to let you in.`, fixes, noBus ? [systemBusSocket] : [], err);
  }
  if (/^VIR_ERR_(AUTH_FAILED|AUTH_CANCELLED|ACCESS_DENIED)$/.test(code) || /not authorized|access denied|authentication failed/i.test(message)) {
    const polkit = /polkit/i.test(message) || (socketFacts(socket)?.mode ?? 0) === 0o777;
    if (polkit) {
      return needs(attempt.uri, message, 'polkit-refused', `polkit refused this user the use of libvirtd.${joinLibvirt.length ? ' Members of the libvirt group are let in without asking: join it, then log in again.' : ''}`, [...joinLibvirt, ...offerSession], [], err);
    }
    return needs(attempt.uri, message, 'permission', 'libvirtd refused this user.', [...joinLibvirt, ...offerSession], [], err);
  }
  return null;
}
