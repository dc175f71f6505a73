// What a host adds for shut-off domains: their chains read from the image headers, previews that
// say the job runs offline, and the offline engine's access to the definition and intent records.
import { existsSync } from 'node:fs';
import type { Operation } from '../../../shared/contract.ts';
import type { ChainPreview, Disk } from '../../../shared/model.ts';
import { offlineRefusal } from '../../../shared/offline.ts';
import type { LibvirtConnection } from '../../libvirt/connection.ts';
import type { JobRunnerDeps } from '../jobs/job-runner.ts';
import { IntentStore } from '../offline/intents.ts';
import { withImageChains } from '../offline/offline-chain.ts';
import { STORAGE_DAEMON } from '../offline/storage-daemon.ts';

/** The runner's offline engine for a host: local hosts get one, remote ones its refusal. */
export function offlineSetup(uri: string, dataDir: string | undefined, conn: () => LibvirtConnection): Pick<JobRunnerDeps, 'offline'> {
  return {
    offline: {
      hostUri: uri,
      refusal: offlineRefusal(uri) ?? (existsSync(STORAGE_DAEMON) ? null : `offline jobs run in ${STORAGE_DAEMON}, which is not installed (Debian: qemu-system-common)`),
      intents: dataDir === undefined ? null : new IntentStore(dataDir),
      definition: {
        inactiveXml: (domain) => conn().domainXml(domain, { inactive: true, secure: true }),
        define: async (xml) => {
          await conn().defineXML(xml);
        },
      },
    },
  };
}

/** On this machine, a shut-off domain's chains come from the image headers, as QEMU opens them. */
export function withOffline(uri: string, domain: string): { shutOffChains?: (disks: Disk[]) => Promise<Disk[]> } {
  return offlineRefusal(uri) === null ? { shutOffChains: (disks) => withImageChains(domain, disks) } : {};
}

/** The preview says what would run the job, and for a shut-off domain how it differs. */
export function withEngine(uri: string, state: string, op: Operation, preview: ChainPreview): ChainPreview {
  if (op.kind === 'snapshot') return preview;
  if (state !== 'shutoff') return { ...preview, engine: 'libvirt' };
  const refusal = offlineRefusal(uri);
  if (refusal) return { ...preview, engine: 'qemu-storage-daemon', warnings: [...preview.warnings, `Not offered: ${refusal}.`] };
  const definition =
    op.kind === 'copy' && op.afterReady === 'keep'
      ? 'The domain keeps its disk: its definition is not changed, and the copy is a file of its own.'
      : op.kind === 'copy'
        ? 'There is no pivot: the domain’s definition switches to the copy once its data is complete.'
        : 'The domain’s definition is rewritten only once the data is complete.';
  return {
    ...preview,
    engine: 'qemu-storage-daemon',
    warnings: [
      `Offline, through qemu-storage-daemon: the domain is shut off, so Strata runs the job on its images itself. ${definition} ` +
        'Starting the domain is refused while the job holds its images.',
      ...preview.warnings,
    ],
  };
}
