// What a host reached over SSH may ask of the user while it connects: to trust the remote host's
// key (shown by its fingerprint), or a key's passphrase or a password that ssh asks for. Each
// question is a prompt the window shows and answers; an answer goes to ssh and is never kept.
import { z } from 'zod';
import { hostId } from './fields.ts';

export const hostPromptKinds = ['host-key', 'passphrase', 'password'] as const;
export type HostPromptKind = (typeof hostPromptKinds)[number];

export interface HostPrompt {
  hostId: string;
  /** Names this one question; an answer must name it. */
  promptId: string;
  kind: HostPromptKind;
  /** The question in words: ssh's own for a passphrase or password, Strata's for a host key. */
  text: string;
  /** For a host key: its fingerprint as `ssh-keygen -l` prints it, e.g. "SHA256:Ddf…". */
  fingerprint: string | null;
  /** For a host key: its type as `ssh-keygen -l` names it, e.g. "ED25519", and its size in bits. */
  keyType: string | null;
  /** For a host key: the name it is known by in known_hosts ("host", or "[host]:port"). */
  knownAs: string | null;
  /** For a host key: the known_hosts file trusting it writes to. */
  knownHostsFile: string | null;
  /** The answer given last time to this same question was refused (a wrong passphrase or password). */
  refused: boolean;
}

const promptId = z.string({ error: 'promptId must be a string: the id of a host.prompt event' }).min(1, 'promptId must not be empty').max(100);

export const sshRequestSchemas = {
  /** The questions waiting for an answer, for a window that opens while one is asked. */
  'host.prompts': z.object({}).strict(),
  /**
   * Answers a prompt: `answer` is the passphrase or password (one line), or 'trust' for a host
   * key; `cancel: true` declines it instead.
   */
  'host.answerPrompt': z
    .object({
      hostId,
      promptId,
      answer: z
        .string({ error: 'answer must be a string' })
        .max(4096, 'answer is at most 4096 characters')
        .refine((s) => !/[\r\n\u0000]/.test(s), 'answer is one line: it cannot contain line breaks or NUL')
        .optional(),
      cancel: z.literal(true, { error: 'cancel must be true when given' }).optional(),
    })
    .strict()
    .refine((p) => (p.answer === undefined) !== (p.cancel === undefined), 'give either answer or cancel: true'),
} as const;

export interface SshResults {
  'host.prompts': HostPrompt[];
  /** Whether the answer reached ssh (false: the question had already gone, e.g. ssh gave up). */
  'host.answerPrompt': { delivered: boolean };
}

export type HostPromptEnd = 'answered' | 'cancelled' | 'gone';

export interface SshEvents {
  /** A host asks the user something; answer with host.answerPrompt. */
  'host.prompt': HostPrompt;
  /** A prompt needs no answer any more: answered (here or in another window), cancelled, or gone with its attempt. */
  'host.promptClosed': { hostId: string; promptId: string; end: HostPromptEnd };
}
