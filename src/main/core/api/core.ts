// Builds the core both shells share (the Electron main process and the headless server): the
// event hub, the service with its hosts, and the validating dispatcher.
import { log } from '../../log/logger.ts';
import { defaultLabRoot, prepareDataDir } from '../storage/data-dir.ts';
import { Dispatcher } from './dispatcher.ts';
import { EventHub } from './event-hub.ts';
import { JobHistory } from '../storage/history.ts';
import { noLimits, SavedHosts } from '../storage/saved-hosts.ts';
import { StrataService } from './service.ts';

export interface StrataCore {
  hub: EventHub;
  service: StrataService;
  dispatcher: Dispatcher;
  /** What the user should know about this start, e.g. a data file moved aside; already logged. */
  startupWarnings: string[];
  /**
   * Closes the connections and waits for the history to be written. Block jobs are libvirt's and
   * QEMU's: they keep running, and the next start finds them again.
   */
  close(): Promise<void>;
}

export const defaultHostId = 'default';

export interface CoreOptions {
  /** The default host of this run (from --uri, LIBVIRT_DEFAULT_URI, or libvirt's default). */
  uri: string;
  /** The app's data folder: saved hosts, job history, practice labs, logs. */
  dataDir: string;
  labRoot?: string | null;
  keepAliveIntervalSeconds?: number;
  discoveryIntervalMs?: number;
}

/** Throws a StartupError (from storage) when the data folder or its files cannot be used. */
export async function createCore(options: CoreOptions): Promise<StrataCore> {
  await prepareDataDir(options.dataDir);
  const hub = new EventHub();
  const savedHosts = new SavedHosts(options.dataDir);
  const history = new JobHistory(options.dataDir);
  const hosts = await savedHosts.load();
  const past = await history.load();
  const startupWarnings = [hosts.warning, past.warning].filter((w): w is string => w !== null);
  const service = new StrataService({
    hub,
    savedHosts,
    history,
    labRoot: options.labRoot === undefined ? defaultLabRoot(options.dataDir) : options.labRoot,
    dataDir: options.dataDir,
    ...(options.keepAliveIntervalSeconds !== undefined ? { keepAliveIntervalSeconds: options.keepAliveIntervalSeconds } : {}),
    ...(options.discoveryIntervalMs !== undefined ? { discoveryIntervalMs: options.discoveryIntervalMs } : {}),
  });
  // Unreachable hosts do not stop the app: they show as retrying, with libvirt's reason.
  // A saved host is the default host again only if it is also writable: hosts.add keeps a
  // read-only host of the default URI apart from it, so it is restored too.
  await Promise.all([
    service.addHost({ id: defaultHostId, uri: options.uri, label: options.uri, readOnly: false, saved: false, limits: noLimits }),
    ...hosts.hosts.filter((h) => h.uri !== options.uri || h.readOnly).map((h) => service.addHost({ ...h, saved: true })),
  ]);
  log.info('core started', { uri: options.uri, dataDir: options.dataDir, savedHosts: hosts.hosts.length, history: history.list().length });

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await service.close();
      // Closing the hosts stops the tracking, so no job can end into the history after this.
      await history.flush();
      log.info('core closed');
    })());
  return { hub, service, dispatcher: new Dispatcher(service), startupWarnings, close };
}
