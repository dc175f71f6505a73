// Builds the core both shells share (the Electron main process and the headless server): the
// event hub, the service with its default host, and the validating dispatcher.
import { Dispatcher } from './dispatcher.ts';
import { EventHub } from './event-hub.ts';
import { StrataService } from './service.ts';

export interface StrataCore {
  hub: EventHub;
  service: StrataService;
  dispatcher: Dispatcher;
  close(): Promise<void>;
}

export const defaultHostId = 'default';

export async function createCore(options: { uri: string }): Promise<StrataCore> {
  const hub = new EventHub();
  const service = new StrataService(hub);
  // An unreachable host does not stop the app: it shows as retrying, with libvirt's reason.
  await service.addHost({ id: defaultHostId, uri: options.uri, label: options.uri });
  return { hub, service, dispatcher: new Dispatcher(service), close: () => service.close() };
}
