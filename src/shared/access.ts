// Why a host cannot be reached when the cause needs the user (a permission, a daemon that is not
// running, an unknown host key), and the fixes that fit. A host with such a problem stops retrying
// (state 'needs-user') until the user presses Retry (`hosts.retry`) or a watched path changes
// (the daemon's socket appears).
import { z } from 'zod';
import type { HostInfo } from './model.ts';
import { hostId } from './fields.ts';

export const accessProblemKinds = [
  /** The local daemon's socket is missing: libvirtd (or virtqemud) is not running, or not installed. */
  'socket-missing',
  /** The socket is there but nobody answers on it: the daemon stopped or crashed. */
  'daemon-not-running',
  /** The socket lets only a group in (libvirt) that this user is not in. */
  'not-in-group',
  /** /etc/group lists the user in the group, but this login started before: it needs a new login. */
  'group-needs-login',
  /** libvirtd asked polkit, and polkit said no (or nobody answered its prompt). */
  'polkit-refused',
  /** libvirtd wants to ask polkit, and polkit (or the system D-Bus it sits on) is not there. */
  'polkit-unavailable',
  /** Refused for another reason the words name (a socket's mode, an ACL, libvirt's access driver). */
  'permission',
  /** ssh does not know the remote host's key yet: it must be seen and accepted once. */
  'host-key-unknown',
  /** The remote host's key differs from the one known for it. */
  'host-key-changed',
  /** The SSH key needs its passphrase (no agent holds it). */
  'passphrase-needed',
  /** The SSH server refused every key and method offered. */
  'ssh-auth-failed',
  /** The remote host has neither virt-ssh-helper nor nc to reach its libvirtd with. */
  'ssh-remote-no-libvirt',
  /** The remote libvirtd refused the remote user (polkit, its socket's group). */
  'ssh-remote-refused',
] as const;
export type AccessProblemKind = (typeof accessProblemKinds)[number];

export interface AccessFix {
  /** What this fix does and what it changes, in one or two sentences. */
  label: string;
  /** A command to run in a terminal, shown for copying; Strata never runs it. */
  command: string | null;
  /** A libvirt URI to use instead; the window offers it as a button that adds that host. */
  uri: string | null;
}

export interface AccessProblem {
  kind: AccessProblemKind;
  /** What libvirt (or ssh) said, word for word. */
  detail: string;
  /** The fixes that fit, the likeliest first. */
  fixes: AccessFix[];
  /** Paths whose appearance or change makes Strata try again by itself; empty: only Retry does. */
  watching: string[];
}

export const accessRequestSchemas = {
  /** Try to connect now: after a problem that needed the user, or to skip the backoff's wait. */
  'hosts.retry': z.object({ hostId }).strict(),
} as const;

export interface AccessResults {
  /** The host as it is after the attempt. */
  'hosts.retry': HostInfo;
}
