// The one API between the UI and the main process: every command with its parameters (validated
// at the main-process boundary), its reply, and the events pushed to the UI. Both transports
// (Electron IPC and the headless WebSocket) carry exactly these.
import { z } from 'zod';
import type { DomainDetail, DomainSummary, HostInfo, Job } from './model.ts';
import type { ErrorEnvelope } from './errors.ts';

/** The largest bandwidth a request may carry: 2^53-1 bytes/s, the largest exact JS integer. */
const maxBandwidth = Number.MAX_SAFE_INTEGER;

const hostId = z.string({ error: 'hostId must be a string' }).min(1, 'hostId must not be empty').max(200);

// libvirt allows nearly anything in a domain name except '/', which it forbids.
const domainName = z
  .string({ error: 'domain must be a string: the domain name' })
  .min(1, 'domain must not be empty')
  .max(255, 'domain names are at most 255 characters')
  .refine((s) => !s.includes('/') && !/[\u0000-\u001f]/.test(s), 'domain names cannot contain "/" or control characters');

const diskTarget = z
  .string({ error: "disk must be a string: the disk's target, such as 'vda'" })
  .regex(/^[a-z]{1,8}[a-z0-9]{0,8}$/, "disk must be a target name such as 'vda' or 'sdb'");

const bandwidthBytesPerSec = z
  .number({ error: 'bandwidthBytesPerSec must be a number of bytes per second (0 for no limit)' })
  .int('bandwidthBytesPerSec must be a whole number of bytes per second')
  .min(0, 'bandwidthBytesPerSec cannot be negative (0 means no limit)')
  .max(maxBandwidth, 'bandwidthBytesPerSec is too large');

const diskRef = { hostId, domain: domainName, disk: diskTarget };

export const requestSchemas = {
  'hosts.list': z.object({}).strict(),
  'domains.list': z.object({ hostId }).strict(),
  'domain.get': z.object({ hostId, domain: domainName }).strict(),
  'jobs.list': z.object({ hostId }).strict(),
  'job.pull': z.object({ ...diskRef, bandwidthBytesPerSec: bandwidthBytesPerSec.default(0) }).strict(),
  'job.setSpeed': z.object({ ...diskRef, bandwidthBytesPerSec }).strict(),
  'job.abort': z.object({ ...diskRef }).strict(),
} as const;

export type Method = keyof typeof requestSchemas;
/** What a caller sends (defaults may be left out). */
export type Params<M extends Method> = z.input<(typeof requestSchemas)[M]>;
/** What the service receives after validation. */
export type ValidParams<M extends Method> = z.output<(typeof requestSchemas)[M]>;

export interface Results {
  'hosts.list': HostInfo[];
  'domains.list': DomainSummary[];
  'domain.get': DomainDetail;
  'jobs.list': Job[];
  'job.pull': Job;
  'job.setSpeed': Job;
  'job.abort': Job;
}
export type Result<M extends Method> = Results[M];

export interface Events {
  /** A job appeared, progressed, changed phase or ended. */
  job: Job;
  /** A domain's disks or chains changed (a job ended, a pivot): read it again. */
  'domain.changed': { hostId: string; domain: string };
  host: HostInfo;
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
