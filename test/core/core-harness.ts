// A core over the in-memory transport with a data folder of its own, removed afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StrataClient } from '../../src/shared/bridge.ts';
import type { EventName, Events } from '../../src/shared/contract.ts';
import { createCore, type CoreOptions, type StrataCore } from '../../src/main/core/api/core.ts';
import { inMemoryBridge } from './in-memory-bridge.ts';

export interface TestCore {
  core: StrataCore;
  client: StrataClient;
  dataDir: string;
  /** Every event received, in order. */
  events: { event: EventName; data: Events[EventName] }[];
  close(): Promise<void>;
}

export async function startTestCore(options: Omit<CoreOptions, 'dataDir'> & { dataDir?: string }): Promise<TestCore> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'strata-data-')));
  const core = await createCore({ labRoot: null, ...options, dataDir });
  const bridge = inMemoryBridge(core);
  const events: TestCore['events'] = [];
  bridge.onEvent((event, data) => events.push({ event, data: data as Events[EventName] }));
  let closed = false;
  return {
    core,
    client: new StrataClient(bridge),
    dataDir,
    events,
    async close() {
      if (closed) return;
      closed = true;
      bridge.close();
      await core.close();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
