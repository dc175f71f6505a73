// The one API between the UI and the main process: every command with its parameters (validated
// at the main-process boundary), its reply, and the events pushed to the UI. Both transports
// (Electron IPC and the headless WebSocket) carry exactly these.
import { z } from 'zod';
import type { ChainPreview, Disk, DomainDetail, DomainSummary, HostInfo, Job, JobEvent } from './model.ts';
import type { ErrorEnvelope } from './errors.ts';
import type { ChainCheck, HostCapabilities } from './health.ts';
import { layerRequestSchemas, type LayerResults } from './layers.ts';
import { accessRequestSchemas, type AccessResults } from './access.ts';
import { sshRequestSchemas, type SshEvents, type SshResults } from './ssh.ts';
import { backupRequestSchemas, type BackupEvents, type BackupResults } from './backup.ts';
import { spaceGuardRequestSchemas, type GuestIoPause, type SpaceGuardResults } from './space-guard.ts';
import { diskTarget, domainName, hostId } from './fields.ts';

/** The largest bandwidth a request may carry: 2^53-1 bytes/s, the largest exact JS integer. */
const maxBandwidth = Number.MAX_SAFE_INTEGER;

const bandwidthBytesPerSec = z
  .number({ error: 'bandwidthBytesPerSec must be a number of bytes per second (0 for no limit)' })
  .int('bandwidthBytesPerSec must be a whole number of bytes per second')
  .min(0, 'bandwidthBytesPerSec cannot be negative (0 means no limit)')
  .max(maxBandwidth, 'bandwidthBytesPerSec is too large');

const diskRef = { hostId, domain: domainName, disk: diskTarget };

const uri = z
  .string({ error: 'uri must be a libvirt URI such as qemu:///system' })
  .max(1024, 'uri is too long')
  .regex(/^[a-z][a-z0-9+.-]*:\/\/[^\s\u0000-\u001f]*$/, 'uri must be a libvirt URI such as qemu:///system or qemu+ssh://user@host/system')
  // libvirt's ext transport runs the program its URI names (?command=), and a host name that
  // begins with '-' reaches ssh as an option: either would let a request run a command here.
  .refine((u) => !/^[a-z0-9.-]*\+ext:/.test(u), "uri cannot use libvirt's ext transport, which runs a local command: use ssh, tls, tcp or unix")
  // `command` names the local program libvirt runs in ssh's place; Strata sets it to its own.
  .refine((u) => !/[?&]command=/i.test(u), "uri cannot set libvirt's command parameter: it names a local program to run in ssh's place")
  .refine((u) => !/^[^:]*:\/\/([^/@?#]*@)?-/.test(u), "uri's host name cannot begin with '-'");

const label = z
  .string({ error: 'label must be a string' })
  .min(1, 'label must not be empty')
  .max(100, 'label is at most 100 characters')
  .refine((s) => !/[\u0000-\u001f]/.test(s), 'label cannot contain control characters');

/** A layer of the chain by libvirt's `index` (the N of `vda[N]`, shown with each layer). */
const layerIndex = z
  .number({ error: 'a layer is named by its index, the N of vda[N]' })
  .int('a layer index is a whole number')
  .min(0, 'a layer index cannot be negative')
  .max(100_000, 'no chain has a layer index that large');

// An image path on the host: absolute, no '..' segments (a path must say where it goes), no
// control characters (they would end up in libvirt's XML and in file names).
const imagePath = z
  .string({ error: 'destination must be an absolute path on the host' })
  .min(2, 'destination must be an absolute path on the host')
  .max(4096, 'destination is too long')
  .refine((p) => p.startsWith('/'), 'destination must be an absolute path, starting with /')
  .refine((p) => !p.split('/').includes('..'), 'destination must not contain .. segments')
  .refine((p) => !/[\u0000-\u001f]/.test(p), 'destination cannot contain control characters')
  .refine((p) => !p.endsWith('/'), 'destination must name a file, not a folder');

const afterReady = z.enum(['pivot', 'keep', 'wait'], { error: "afterReady must be 'pivot', 'keep' or 'wait'" });

const pullOperation = z.object({ kind: z.literal('pull'), base: layerIndex.optional() }).strict();
const commitOperation = z
  .object({
    kind: z.literal('commit'),
    top: layerIndex.optional(),
    base: layerIndex.optional(),
    afterReady: afterReady.optional(),
    deleteLayers: z.boolean().default(false),
  })
  .strict();
const copyOperation = z
  .object({
    kind: z.literal('copy'),
    destination: imagePath,
    format: z.enum(['qcow2', 'raw'], { error: "format must be 'qcow2' or 'raw'" }).default('qcow2'),
    shallow: z.boolean().default(false),
    reuseExisting: z.boolean().default(false),
    synchronousWrites: z.boolean().default(false),
    afterReady: afterReady.default('wait'),
  })
  .strict();
const snapshotOperation = z.object({ kind: z.literal('snapshot'), destination: imagePath.optional() }).strict();

const jobOperation = z.discriminatedUnion('kind', [pullOperation, commitOperation, copyOperation], {
  error: "operation.kind must be 'pull', 'commit' or 'copy'",
});
const anyOperation = z.discriminatedUnion('kind', [pullOperation, commitOperation, copyOperation, snapshotOperation], {
  error: "operation.kind must be 'pull', 'commit', 'copy' or 'snapshot'",
});

const confirmation = z.enum(['drop-layers', 'delete-files', 'reuse-existing-file', 'shared-layers', 'low-space'], {
  error: "confirm holds 'drop-layers', 'delete-files', 'reuse-existing-file', 'shared-layers' or 'low-space'",
});

export type JobOperation = z.output<typeof jobOperation>;
export type Operation = z.output<typeof anyOperation>;

export const requestSchemas = {
  'hosts.list': z.object({}).strict(),
  'hosts.add': z.object({ uri, label: label.optional(), readOnly: z.boolean().default(false) }).strict(),
  'hosts.remove': z.object({ hostId }).strict(),
  'hosts.setLimits': z
    .object({
      hostId,
      maxConcurrentJobs: z.number().int('maxConcurrentJobs must be a whole number').min(0, 'maxConcurrentJobs cannot be negative (0 means no limit)').max(1000),
      bandwidthBudgetBytesPerSec: bandwidthBytesPerSec,
    })
    .strict(),
  'domains.list': z.object({ hostId }).strict(),
  'domain.get': z.object({ hostId, domain: domainName }).strict(),
  'jobs.list': z.object({ hostId: hostId.optional() }).strict(),
  'operation.preview': z.object({ ...diskRef, operation: anyOperation }).strict(),
  'job.start': z
    .object({
      ...diskRef,
      operation: jobOperation,
      bandwidthBytesPerSec: bandwidthBytesPerSec.default(0),
      confirm: z.array(confirmation).max(5).default([]),
      whenBusy: z.enum(['refuse', 'queue'], { error: "whenBusy must be 'refuse' or 'queue'" }).default('refuse'),
    })
    .strict(),
  'job.pivot': z.object({ ...diskRef }).strict(),
  'job.setSpeed': z.object({ ...diskRef, bandwidthBytesPerSec }).strict(),
  'job.abort': z.object({ ...diskRef }).strict(),
  // By the job, never by a path: only a file a Strata copy created and left can be removed.
  'job.removeLeftover': z
    .object({
      hostId,
      jobId: z
        .string({ error: 'jobId must be a string: the id of an ended copy' })
        .min(1, 'jobId must not be empty')
        .max(1000, 'jobId is too long')
        .refine((s) => !/[\u0000-\u001f]/.test(s), 'jobId cannot contain control characters'),
      confirm: z.array(confirmation).max(3).default([]),
    })
    .strict(),
  ...layerRequestSchemas,
  'chain.check': z.object({ ...diskRef }).strict(),
  'host.capabilities': z.object({ hostId }).strict(),
  'lab.create': z.object({ hostId }).strict(),
  'lab.remove': z.object({ hostId, domain: domainName }).strict(),
  'history.list': z.object({}).strict(),
  'history.export': z.object({}).strict(),
  ...spaceGuardRequestSchemas,
  ...accessRequestSchemas,
  ...sshRequestSchemas,
  ...backupRequestSchemas,
} as const;

export type Method = keyof typeof requestSchemas;
/** What a caller sends (defaults may be left out). */
export type Params<M extends Method> = z.input<(typeof requestSchemas)[M]>;
/** What the service receives after validation. */
export type ValidParams<M extends Method> = z.output<(typeof requestSchemas)[M]>;

export interface Results extends SpaceGuardResults, SshResults, AccessResults, LayerResults, BackupResults {
  'hosts.list': HostInfo[];
  'hosts.add': HostInfo;
  'hosts.remove': { removed: string };
  'hosts.setLimits': HostInfo;
  'domains.list': DomainSummary[];
  'domain.get': DomainDetail;
  'jobs.list': Job[];
  'operation.preview': ChainPreview;
  'job.start': Job;
  'job.pivot': Job;
  'job.setSpeed': Job;
  'job.abort': Job;
  /** The job with its leftover marked removed. */
  'job.removeLeftover': Job;
  'disk.snapshot': Disk;
  'chain.check': ChainCheck;
  'host.capabilities': HostCapabilities;
  'lab.create': DomainDetail;
  'lab.remove': { removed: string };
  'history.list': Job[];
  'history.export': { fileName: string; json: string };
}
export type Result<M extends Method> = Results[M];

export interface Events extends SshEvents, BackupEvents {
  /** A job appeared, progressed, changed phase, ended or was amended: the job and what happened (`transition`). */
  job: JobEvent;
  /** QEMU paused a guest on an I/O error (a full file system), or the guest runs again (`paused: false`). */
  'domain.ioPause': GuestIoPause;
  /** A domain's disks or chains changed (a job ended, a pivot): read it again. */
  'domain.changed': { hostId: string; domain: string };
  /** A host appeared, changed state or limits. */
  host: HostInfo;
  'host.removed': { hostId: string };
}
export type EventName = keyof Events;

export const methods = Object.keys(requestSchemas) as Method[];

/** The service both transports call; the main process implements it, the renderer calls it. */
export type StrataApi = {
  [M in Method]: (params: ValidParams<M>) => Promise<Result<M>>;
};

// The wire format shared by the WebSocket and the in-memory transport.
export type ClientMessage = { type: 'request'; id: number; method: string; params: unknown };
export type ServerMessage =
  | { type: 'response'; id: number; ok: true; result: unknown }
  | { type: 'response'; id: number; ok: false; error: ErrorEnvelope }
  | { type: 'event'; event: EventName; data: unknown };
