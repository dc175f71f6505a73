// What a Host is made from: its saved configuration, and what the core lends it (the event hub,
// the history, folders, timings, the SSH connector).
import type { HostLimits } from '../../../shared/model.ts';
import type { SpaceGuardSettings } from '../../../shared/space-guard.ts';
import type { EventHub } from '../api/event-hub.ts';
import type { JobHistory } from '../storage/history.ts';
import type { SshConnector } from './ssh/ssh-connector.ts';

export interface HostConfig {
  id: string;
  uri: string;
  label: string;
  readOnly: boolean;
  saved: boolean;
  limits: HostLimits;
  spaceGuard?: SpaceGuardSettings;
}

export interface HostEnv {
  hub: EventHub;
  history: JobHistory;
  /** Where practice labs keep their images; null where labs cannot be made. */
  labRoot: string | null;
  /** Strata's data folder (saved hosts, history, logs): no copy or new layer may be written there. */
  dataDir?: string;
  keepAliveIntervalSeconds?: number;
  /** How often running domains' disks are checked for jobs started elsewhere (virsh). */
  discoveryIntervalMs?: number;
  /** Opens qemu+ssh hosts, asking the user about host keys and passphrases; absent, URIs open as they are. */
  ssh?: SshConnector;
  /** Resolves once what jobs' ends set off is written (a backup point's manifest): a stop waits for it. */
  settled?: () => Promise<void>;
}
