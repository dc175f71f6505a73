// Backups: the contract's commands, replies and data for backup sets. A set is a folder holding a
// full backup and the incrementals taken on top of it, with a manifest that explains it, so the
// folder alone is enough to list and restore it.
import { z } from 'zod';
import type { Job } from './model.ts';
import { diskTarget, domainName, hostId } from './fields.ts';

/** A set is named by its folder: letters, digits, '-', '_' and '.', never a path. */
const setId = z
  .string({ error: "setId must be a string: the set's folder name, as backup.list gives it" })
  .regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/, "setId is the set's folder name, as backup.list gives it");

const absolutePath = (what: string) =>
  z
    .string({ error: `${what} must be an absolute path on the host` })
    .min(2, `${what} must be an absolute path on the host`)
    .max(4096, `${what} is too long`)
    .refine((p) => p.startsWith('/'), `${what} must be an absolute path, starting with /`)
    .refine((p) => !p.split('/').includes('..'), `${what} must not contain .. segments`)
    .refine((p) => !/[\u0000-\u001f]/.test(p), `${what} cannot contain control characters`);

const bandwidthBytesPerSec = z
  .number({ error: 'bandwidthBytesPerSec must be a number of bytes per second (0 for no limit)' })
  .int('bandwidthBytesPerSec must be a whole number of bytes per second')
  .min(0, 'bandwidthBytesPerSec cannot be negative (0 means no limit)')
  .max(Number.MAX_SAFE_INTEGER, 'bandwidthBytesPerSec is too large');

const kind = z.enum(['auto', 'full'], { error: "kind must be 'auto' (incremental where a checkpoint allows it) or 'full'" });
const disks = z.array(diskTarget).min(1, 'name at least one disk, or leave disks out for all of them').max(64).optional();
const pointIndex = z
  .number({ error: 'point is the index of a backup in its set (0 is the full backup)' })
  .int('point is a whole number')
  .min(0, 'point cannot be negative')
  .max(100_000);

/** Which point of which set, and where it goes: a new image file, or the shut-off domain's own disk. */
const restoreFields = {
  hostId,
  domain: domainName,
  setId,
  point: pointIndex,
  disk: diskTarget,
  destination: absolutePath('destination').refine((p) => !p.endsWith('/'), 'destination must name a file, not a folder').optional(),
  into: z
    .enum(['file', 'domain'], { error: "into is 'file' (a new image file) or 'domain' (the shut-off domain's disk switched to the restored image)" })
    .default('file'),
};

export const backupRequestSchemas = {
  'backup.preview': z.object({ hostId, domain: domainName, disks, kind: kind.default('auto') }).strict(),
  'backup.start': z.object({ hostId, domain: domainName, disks, kind: kind.default('auto'), bandwidthBytesPerSec: bandwidthBytesPerSec.default(0) }).strict(),
  'backup.list': z.object({ hostId, domain: domainName.optional() }).strict(),
  'backup.restorePreview': z.object(restoreFields).strict(),
  'backup.restore': z
    .object({
      ...restoreFields,
      deleteOldChain: z.array(absolutePath('each file of deleteOldChain')).max(64, 'deleteOldChain names at most 64 files').default([]),
      bandwidthBytesPerSec: bandwidthBytesPerSec.default(0),
      wait: z.boolean({ error: 'wait is true (reply once the restore ended) or false (reply with its job at once)' }).default(true),
    })
    .strict(),
  'backup.verify': z.object({ hostId, domain: domainName, setId }).strict(),
  'backup.remove': z
    .object({
      hostId,
      domain: domainName,
      setId,
      confirm: z.array(z.enum(['delete-files'], { error: "confirm holds 'delete-files'" })).max(1).default([]),
    })
    .strict(),
  'backup.setLocation': z.object({ hostId, path: absolutePath('path') }).strict(),
  'backup.settings': z.object({ hostId, domain: domainName.optional() }).strict(),
  'backup.setSchedule': z
    .object({
      hostId,
      domain: domainName,
      schedule: z
        .object({
          every: z.enum(['day', 'week'], { error: "every is 'day' or 'week'" }),
          at: z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'at is a local time such as 03:00'),
          weekday: z.number().int().min(0, 'weekday is 0 (Sunday) to 6').max(6, 'weekday is 0 (Sunday) to 6').default(0),
          fullEvery: z.number().int('fullEvery is a whole number').min(1, 'fullEvery is at least 1 (every run full)').max(1000).default(7),
        })
        .strict()
        .nullable(),
    })
    .strict(),
  'backup.setRetention': z
    .object({
      hostId,
      domain: domainName,
      keepSets: z.number().int('keepSets is a whole number').min(1, 'keepSets is at least 1').max(1000).nullable().default(null),
      keepDays: z.number().int('keepDays is a whole number').min(1, 'keepDays is at least 1').max(36500).nullable().default(null),
    })
    .strict(),
} as const;

/** One image file of a backup: one disk at one point. */
export interface BackupImage {
  disk: string;
  /** The file's name inside the set's folder. */
  file: string;
  format: 'qcow2';
  /** The image below it in the set (the previous point of the same disk); null for the full backup. */
  backingFile: string | null;
  /** The file's size on the host once written; null while unknown. */
  bytes: number | null;
}

/**
 * 'running': being written (or Strata stopped while it was: then it is no good); 'complete': the
 * point restores; 'failed', 'cancelled': it does not, and its files were removed.
 */
export type BackupPointStatus = 'running' | 'complete' | 'failed' | 'cancelled';

/** One backup in a set: the full one (index 0) or an incremental on the one before it. */
export interface BackupPoint {
  index: number;
  kind: 'full' | 'incremental';
  /** The libvirt checkpoint created with it: the next incremental starts from it. */
  checkpoint: string;
  /** Epoch milliseconds. */
  startedAt: number;
  endedAt: number | null;
  status: BackupPointStatus;
  /** Why it is full, or why it failed. */
  reason: string | null;
  /** Data the backup copied (libvirt's count); null while unknown. */
  dataBytes: number | null;
  images: BackupImage[];
}

export interface BackupSetDisk {
  target: string;
  virtualBytes: number | null;
  /** The disk's active image when the set began. */
  sourcePath: string | null;
}

export interface BackupSet {
  /** The set's folder name. */
  id: string;
  domain: string;
  domainUuid: string | null;
  hostUri: string;
  /** The set's folder on the host. */
  folder: string;
  strataVersion: string;
  createdAt: number;
  disks: BackupSetDisk[];
  points: BackupPoint[];
  /** At least one point restores. A set without one is listed, never as good. */
  good: boolean;
  /** The set's folder could not be read as a set: why (then points is empty). */
  problem: string | null;
}

export interface BackupPlan {
  domain: string;
  disks: string[];
  kind: 'full' | 'incremental';
  /** Why the backup is full, or which checkpoint the incremental starts from. */
  reason: string;
  /** The set it adds to (an incremental), or null for a new set. */
  setId: string | null;
  /** The folder the images go to. */
  folder: string;
  /** The host that folder is on (user@host:port; its libvirt writes the images there), or null: this machine. */
  onHost: string | null;
  /** Data it will copy: the disks' allocated data for a full one, the checkpoint's dirty data for an incremental; null when unknown. */
  bytesToWrite: number | null;
  /** The same per disk, in the order of `disks`; bytes null where unknown. */
  diskBytes: { disk: string; bytes: number | null }[];
  /** Free space where the images go (on a remote host, as its df says); null when unknown. */
  freeBytes: number | null;
  /** Whether the limit can change while the backup runs. libvirt throttles a push backup as a block job. */
  bandwidth: 'live';
  /** A reason the backup cannot start now; null when it can. */
  refused: string | null;
  /** Why it would wait in the host's queue (a job on its disks, no room on the host); null: it starts at once. */
  waiting: string | null;
}

export interface BackupStarted {
  set: BackupSet;
  point: BackupPoint;
  /** One job per disk, type 'backup'. */
  jobs: Job[];
}

/** What a restore will do, before it starts. */
export interface RestorePlan {
  domain: string;
  setId: string;
  point: number;
  disk: string;
  into: 'file' | 'domain';
  /** The set's images the point is read from, full backup first. */
  images: string[];
  /** The new image file; written under a temporary name beside it and renamed at the end. */
  destination: string;
  virtualBytes: number | null;
  /** Data the restore writes (qemu-img measure of the point's chain); null when unknown. */
  bytesToWrite: number | null;
  /** Free space where the image goes; null when unknown. */
  freeBytes: number | null;
  /** Into the domain: the lines of its persistent definition that change (every other byte is kept); null for a new file. */
  definition: { before: string[]; after: string[] } | null;
  /** Into the domain: the disk's chain now, active image first; kept on disk unless deleteOldChain names its files. */
  oldChain: string[];
  /** The files of oldChain that deleteOldChain may name: those no other domain uses. */
  deletable: string[];
  /** Files of oldChain that other domains use too: never deleted. */
  sharedWith: { path: string; domains: string[] }[];
  /**
   * 'live': the limit can change while it runs (qemu-storage-daemon's block-job-set-speed);
   * 'fixed': given at the start and kept (a remote host's restore: qemu-img convert -r).
   */
  bandwidth: 'live' | 'fixed';
  /** Why the restore cannot start now; null when it can. */
  refused: string | null;
}

export interface RestoreStarted {
  plan: RestorePlan;
  /** The restore's job, type 'restore': ended already when the request waited for it. */
  job: Job;
  /** Where the restored image is (once the job completed). */
  path: string;
  /** Its size once complete; null while the job runs. */
  bytes: number | null;
  /** The old chain's files deleted after the switch. */
  deleted: string[];
}

export interface BackupVerification {
  setId: string;
  ok: boolean;
  images: { file: string; ok: boolean; message: string }[];
  points: { index: number; ok: boolean; message: string }[];
}

export interface BackupSettingsView {
  hostId: string;
  /** The folder; '' while a remote host has none chosen. */
  location: string;
  /** Where the location is chosen from: 'default', 'set', or 'unset' (a remote host has no default). */
  source: 'default' | 'set' | 'unset';
  /** The host the folder is on (user@host:port), or null: this machine. */
  onHost: string | null;
}

/** When a domain is backed up by itself: daily or weekly at a local time, a full backup every Nth run. */
export interface BackupSchedule {
  every: 'day' | 'week';
  /** Local time, 'HH:MM'. */
  at: string;
  /** For weekly schedules: 0 (Sunday) to 6. */
  weekday: number;
  /** Every Nth run is full (1: always), the others incremental where a checkpoint allows. */
  fullEvery: number;
}

export interface BackupScheduleView {
  domain: string;
  schedule: BackupSchedule | null;
  /** Epoch ms of the next run; null without a schedule. */
  nextRunAt: number | null;
}

/** A host's backup folder as the window shows it. */
export interface BackupLocationState extends BackupSettingsView {
  /** Free space of the file system the folder is on (its nearest existing parent's); null when unknown. */
  freeBytes: number | null;
  /** Why this host cannot keep backups (another driver, a remote host not reached over SSH, no folder chosen on a remote host), or null. */
  refused: string | null;
}

export interface BackupRetentionState {
  keepSets: number | null;
  keepDays: number | null;
  /** 'default': the domain keeps its last 7 good sets until a retention is set. */
  source: 'default' | 'set';
}

export interface BackupScheduleState extends BackupScheduleView {
  /** Runs of this schedule so far (a new schedule starts at 0). */
  runs: number;
  /** Whether the next run is the full one ('full') or incremental where a checkpoint allows ('auto'); null without a schedule. */
  nextKind: 'full' | 'auto' | null;
  /** The last run of this schedule: when it began, when it was due, and whether it ran late (Strata was not running at its time). Null before its first run. */
  lastRun: { at: number; dueAt: number; late: boolean } | null;
}

export interface BackupSettingsState {
  location: BackupLocationState;
  /** The retention and schedule of the domain asked for; null when none was. */
  domain: { domain: string; retention: BackupRetentionState; schedule: BackupScheduleState } | null;
}

export interface BackupResults {
  'backup.preview': BackupPlan;
  'backup.start': BackupStarted;
  'backup.list': BackupSet[];
  'backup.restorePreview': RestorePlan;
  'backup.restore': RestoreStarted;
  'backup.verify': BackupVerification;
  'backup.remove': { removed: string };
  'backup.setLocation': BackupSettingsView;
  'backup.settings': BackupSettingsState;
  'backup.setRetention': { domain: string; keepSets: number | null; keepDays: number | null };
  'backup.setSchedule': BackupScheduleView;
}

export interface BackupEvents {
  /** A set changed on disk (a backup began, ended, or retention or a user removed a set): read the list again. */
  'backup.changed': { hostId: string; domain: string; setId: string; point: number | null; status: BackupPointStatus | 'removed' };
  /** A host's backup folder (domain null), or a domain's retention or schedule, was set, or a scheduled run began: read the settings again. */
  'backup.settingsChanged': { hostId: string; domain: string | null };
}

/** Whether a URI names a host on this machine (no host name, or a loopback one). */
function localUri(uri: string): boolean | null {
  let host = '';
  try {
    host = new URL(uri).hostname;
  } catch {
    return null;
  }
  return host === '' || host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
}

/**
 * Why a host cannot keep backups, or null when it can: they need QEMU's driver, and a remote host's
 * sets are on that host, where its libvirt writes them: Strata reaches them there only over SSH
 * (qemu+ssh://, through the user's own OpenSSH), to list, verify and remove them.
 */
export function backupRefusal(uri: string): string | null {
  // The driver is the part before any transport (qemu+ssh, qemu+unix).
  const m = /^([a-z0-9]+)(\+([a-z0-9]+))?:/i.exec(uri);
  const driver = m?.[1]?.toLowerCase();
  if (driver !== 'qemu') return "backups need QEMU's driver (a qemu:// URI)";
  const local = localUri(uri);
  if (local === null) return 'the URI does not say where the host is';
  if (local || m?.[3]?.toLowerCase() === 'ssh') return null;
  return (
    `the host is remote and reached over ${m?.[3] ?? 'TLS'}, not SSH: its backups are written on that host by its libvirt, and ` +
    'Strata reaches a remote host\'s files (to list, verify and remove sets) only through SSH; connect it as qemu+ssh://'
  );
}

/**
 * The host a qemu+ssh URI's backup sets are on (user@host:port), or null for a host whose sets are
 * on this machine. Any host an ssh URI names counts, a loopback one too: the ssh login may be
 * another user's, whose QEMU writes what that user can, so its files are reached as that user.
 */
export function backupRemote(uri: string): string | null {
  if (!/^[a-z0-9]+\+ssh:\/\/[^/]/i.test(uri)) return null;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return null;
  }
  if (url.hostname === '') return null;
  return `${url.username ? `${decodeURIComponent(url.username)}@` : ''}${url.hostname}${url.port ? `:${url.port}` : ''}`;
}

/** Why a shut-off domain of a remote host is not backed up. */
export function remoteOfflineRefusal(domain: string, where: string): string {
  return (
    `${domain} is shut off, and its images are on ${where}: Strata backs up a shut-off domain by reading its images with ` +
    `qemu-storage-daemon on this machine, which is not offered for a remote host; start the domain to back it up through ${where}'s libvirt`
  );
}

/** Why a remote host's set is not restored into its domain, and what to do instead. */
export function remoteRestoreIntoRefusal(where: string): string {
  return `restoring into a remote host's domain is not offered (the images are on ${where}); restore to a new file there and switch the disk to it`;
}
