// A job as the tracker holds it: the record everyone sees, and what only following it needs (its
// rate, missed polls, the phase a pivot or abort left, events that came before the start returned).
import type { AfterReady, Job, JobEngine, JobPhase, JobType } from '../../../shared/model.ts';
import { RateEstimator } from './rate.ts';

/** What libvirt said about a job while the call that starts it had not returned yet. */
export interface Early {
  ready: boolean;
  ended: 'completed' | 'failed' | 'cancelled' | null;
  /** The end's own words, when the engine that ran the job told them (see JobTracker.conclude). */
  outcome?: string;
}

export interface Tracked {
  job: Job;
  rate: RateEstimator;
  /** Polls that found no job while no end event had come yet. */
  missing: number;
  /** Strata aborted a ready mirror on purpose to keep the current chain: a success. */
  keeping: boolean;
  /** A poll or scan has reported this job at least once. */
  observed: boolean;
  /** The phase an abort or pivot left, to go back to if libvirt refuses it. */
  before: JobPhase | null;
  /** Events seen while the job was 'requested'. */
  early: Early | null;
  /**
   * libvirt reported the job ready once: its new image was in sync then, and stays a whole image
   * whatever the counters say afterwards (a poll sent before the ready event can answer after it).
   */
  reachedReady: boolean;
  /** An event has told of the job: its first one says it appeared. */
  told: boolean;
}

/** A job waiting for room on the host, with what starts it. */
export interface QueuedJob {
  job: Job;
  start(): Promise<void>;
}

export interface RequestOptions {
  requestedBandwidthBytesPerSec: number;
  afterReady?: AfterReady | null;
  /** Absent: a libvirt block job. */
  engine?: JobEngine;
}

export interface BeginOptions {
  bandwidthBytesPerSec: number;
  requestedBandwidthBytesPerSec?: number;
  afterReady?: AfterReady | null;
}

export const diskKey = (domain: string, disk: string): string => `${domain}/${disk}`;

/** A job as it is first known: nothing measured yet. Its id names the host, disk and start time. */
export function newTracked(fields: Pick<Job, 'hostId' | 'domain' | 'disk' | 'type' | 'phase' | 'origin'> & { now: number }): Tracked {
  const { now, ...known } = fields;
  const job: Job = {
    ...known,
    id: `${known.hostId}/${known.domain}/${known.disk}@${now}`,
    cur: 0,
    end: 0,
    progress: null,
    bandwidthBytesPerSec: 0,
    requestedBandwidthBytesPerSec: 0,
    afterReady: null,
    rateBytesPerSec: null,
    etaSeconds: null,
    startedAt: now,
    updatedAt: now,
    endedAt: null,
    outcome: null,
    leftover: null,
  };
  return { job, rate: new RateEstimator(), missing: 0, keeping: false, observed: false, before: null, early: null, reachedReady: false, told: false };
}
