// At start-up: the offline jobs a previous Strata left (its intent records), each found and
// either followed to its end (its daemon still runs) or reported with its images checked (the
// daemon is gone). Nothing is deleted here: a record goes once its job is settled (settle.ts).
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { checkImage, readImageChain, type CheckResult } from './image-tool.ts';
import type { IntentStore, OfflineIntent } from './intents.ts';
import { OfflineJob } from './offline-job.ts';
import { isOurDaemon } from './storage-daemon.ts';

export type LeftoverJob =
  /** The daemon still runs: the job is followed again, to the end it was started for. */
  | { intent: OfflineIntent; daemon: 'alive'; job: OfflineJob }
  | {
      intent: OfflineIntent;
      daemon: 'dead';
      /** The job had concluded successfully before Strata stopped: the new chain holds the data. */
      dataComplete: boolean;
      /** The chain the active image's headers record now, active layer first; null when unreadable. */
      chainNow: string[] | null;
      /** `qemu-img check` of every image the job could have touched that still exists. */
      checks: CheckResult[];
      /** A file the job created that the chain does not use, left for the user to keep or remove. */
      leftover: string | null;
      /** For the user: what happened and what state the images are in. */
      message: string;
    };

function describe(intent: OfflineIntent): string {
  const op = intent.operation;
  const what =
    op.kind === 'backup' || intent.type === 'backup'
      ? `a backup of ${intent.disk} into ${op.kind === 'backup' || op.kind === 'copy' ? op.destination : intent.target ?? 'a backup set'}`
      : op.kind === 'copy'
        ? `a copy of ${intent.disk} to ${op.destination}`
        : op.kind === 'pull'
          ? `a pull on ${intent.disk}`
          : `a commit on ${intent.disk}`;
  return `${what} of ${intent.domain}`;
}

/** A backup's file belongs to its backup set, which settles it: it is no copy left for the user. */
export function isBackup(intent: OfflineIntent): boolean {
  return intent.type === 'backup' || intent.operation.kind === 'backup';
}

async function reportDead(intent: OfflineIntent): Promise<LeftoverJob> {
  if (intent.daemon) await rm(intent.daemon.runtimeDir, { recursive: true, force: true });
  const dataComplete = intent.step === 'data-complete' || intent.step === 'definition-written';
  const activeNow = dataComplete ? intent.chainAfter[0]!.path : intent.chainBefore[0]!.path;
  let chainNow: string[] | null = null;
  try {
    chainNow = (await readImageChain(activeNow)).map((l) => l.path);
  } catch {
    chainNow = null;
  }
  const images = new Map<string, string>();
  for (const l of [...intent.chainBefore, ...intent.chainAfter]) images.set(l.path, l.format);
  const checks: CheckResult[] = [];
  for (const [path, format] of images) {
    if (!existsSync(path)) continue;
    try {
      checks.push(await checkImage(path, format));
    } catch (err) {
      checks.push({ path, clean: false, corruptions: 0, leaks: 0, detail: err instanceof Error ? err.message : String(err) });
    }
  }
  const leftover = !dataComplete && !isBackup(intent) && intent.target && existsSync(intent.target) ? intent.target : null;
  const dirty = checks.filter((c) => !c.clean).map((c) => c.path);
  const state = dirty.length ? `these images need attention (qemu-img check): ${dirty.join(', ')}` : 'every image passed qemu-img check';
  const message = isBackup(intent)
    ? `Strata stopped during ${describe(intent)} and its qemu-storage-daemon is gone: the backup did not complete, and its backup set records it as failed; ` +
      `the domain's disk is as it was; ${state}.`
    : dataComplete
    ? `Strata stopped after ${describe(intent)} had moved all its data; the domain's definition still names the old chain and is updated now; ${state}.`
    : `Strata stopped during ${describe(intent)} and its qemu-storage-daemon is gone: the domain keeps the chain it had (${intent.chainBefore
        .map((l) => l.path)
        .join(' → ')}); ${state}${leftover ? `; the unfinished copy ${leftover} is left for you to remove` : ''}.`;
  return { intent, daemon: 'dead', dataComplete, chainNow, checks, leftover, message };
}

/** Every job a previous Strata left, in the order they were recorded. */
export async function findLeftoverJobs(
  store: IntentStore,
  options: { stopTimeoutMs?: number; which?: (intent: OfflineIntent) => boolean } = {},
): Promise<LeftoverJob[]> {
  const out: LeftoverJob[] = [];
  for (const intent of await store.list()) {
    if (options.which && !options.which(intent)) continue;
    if (intent.daemon && (await isOurDaemon(intent.daemon.pid, intent.daemon.socket))) {
      try {
        out.push({ intent, daemon: 'alive', job: await OfflineJob.follow(intent, store, options.stopTimeoutMs) });
        continue;
      } catch {
        // The daemon ended between the check and the connection: it is reported as gone.
      }
    }
    out.push(await reportDead(intent));
  }
  return out;
}
