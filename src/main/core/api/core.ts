// Builds the core both shells share (the Electron main process and the headless server): the
// event hub, the service with its hosts, and the validating dispatcher.
import { defaultLabRoot } from '../storage/data-dir.ts';
import { Dispatcher } from './dispatcher.ts';
import { EventHub } from './event-hub.ts';
import { JobHistory } from '../storage/history.ts';
import { HostStore, noLimits } from '../storage/host-store.ts';
import { StrataService } from './service.ts';

export interface StrataCore {
  hub: EventHub;
  service: StrataService;
  dispatcher: Dispatcher;
  close(): Promise<void>;
}

export const defaultHostId = 'default';

export interface CoreOptions {
  /** The default host of this run (from --uri, LIBVIRT_DEFAULT_URI, or libvirt's default). */
  uri: string;
  /** The app's data folder: saved hosts, job history, practice labs. */
  dataDir: string;
  labRoot?: string | null;
  keepAliveIntervalSeconds?: number;
  discoveryIntervalMs?: number;
}

export async function createCore(options: CoreOptions): Promise<StrataCore> {
  const hub = new EventHub();
  const store = new HostStore(options.dataDir);
  const history = new JobHistory(options.dataDir);
  const saved = await store.load();
  await history.load();
  const service = new StrataService({
    hub,
    store,
    history,
    labRoot: options.labRoot === undefined ? defaultLabRoot(options.dataDir) : options.labRoot,
    ...(options.keepAliveIntervalSeconds !== undefined ? { keepAliveIntervalSeconds: options.keepAliveIntervalSeconds } : {}),
    ...(options.discoveryIntervalMs !== undefined ? { discoveryIntervalMs: options.discoveryIntervalMs } : {}),
  });
  // Unreachable hosts do not stop the app: they show as retrying, with libvirt's reason.
  // A saved host is the default host again only if it is also writable: hosts.add keeps a
  // read-only host of the default URI apart from it, so it is restored too.
  await Promise.all([
    service.addHost({ id: defaultHostId, uri: options.uri, label: options.uri, readOnly: false, saved: false, limits: noLimits }),
    ...saved.filter((h) => h.uri !== options.uri || h.readOnly).map((h) => service.addHost({ ...h, saved: true })),
  ]);
  return { hub, service, dispatcher: new Dispatcher(service), close: () => service.close() };
}
