// The last steps of an offline job, after its daemon has ended: the definition rewritten when the
// data is complete (and only then), and the intent record removed once nothing is left to do.
import { defineNewChain, type DefinitionAccess } from './domain-definition.ts';
import type { IntentStore, OfflineIntent } from './intents.ts';

export interface Settled {
  /** The domain's definition now names the new chain. */
  defined: boolean;
}

/**
 * For a job whose data is complete: the definition is rewritten, then the record goes. For one that
 * ended otherwise: the record goes (the chain and the definition are as they were). A failure to
 * define keeps the record, so the next start tries again and says why.
 */
export async function settleOfflineJob(intent: OfflineIntent, completed: boolean, store: IntentStore | null, access: DefinitionAccess): Promise<Settled> {
  // A backup leaves the chain as it was: there is never a definition to rewrite.
  if (!completed || intent.operation.kind === 'backup') {
    await store?.remove(intent.jobId);
    return { defined: false };
  }
  const before = intent.chainBefore[0]!;
  await defineNewChain(access, intent.domain, intent.disk, { path: before.path, format: before.format }, intent.chainAfter);
  if (store) {
    await store.write({ ...intent, step: 'definition-written' });
    await store.remove(intent.jobId);
  }
  return { defined: true };
}
