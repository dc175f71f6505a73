// The user's SSH agent, for the ssh that libvirt runs. libvirt hands ssh Strata's SSH_AUTH_SOCK,
// and that is all an agent needs when Strata has it. The desktop app started from a menu, or
// `npm run serve` from a service unit, may not: their environment is the session manager's, not
// the login shell's that ran `eval $(ssh-agent)`. The agent runs all the same, at a place its
// launcher fixed under XDG_RUNTIME_DIR; Strata looks there, as ssh would have been told to.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Where desktops' agents listen, under XDG_RUNTIME_DIR, in the order they are tried. */
export const AGENT_SOCKETS = [
  // Debian's openssh-client user unit (agent-launch), bookworm and later.
  'openssh_agent',
  // The ssh-agent.service user unit many distributions and guides use.
  'ssh-agent.socket',
  // GNOME's gcr-ssh-agent (GNOME 44 and later), then gnome-keyring's agent before it.
  'gcr/ssh',
  'keyring/ssh',
  // gpg-agent with enable-ssh-support.
  'gnupg/S.gpg-agent.ssh',
];

/**
 * The agent socket ssh should use: SSH_AUTH_SOCK when set, else the first of the desktops' places
 * that is a socket of this user's; null when there is none (ssh then asks for a key's passphrase).
 */
export async function userAgentSocket(env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  if (env['SSH_AUTH_SOCK']) return env['SSH_AUTH_SOCK'];
  const uid = process.getuid?.();
  const runtime = env['XDG_RUNTIME_DIR'] || (uid !== undefined ? `/run/user/${uid}` : null);
  if (!runtime) return null;
  for (const name of AGENT_SOCKETS) {
    const path = join(runtime, name);
    const found = await stat(path).catch(() => null);
    // Someone else's socket would hold someone else's keys: only this user's own is taken.
    if (found?.isSocket() && (uid === undefined || found.uid === uid)) return path;
  }
  return null;
}
