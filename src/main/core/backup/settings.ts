// What the user chose for backups, kept in the data folder (`backups.json`): each host's backup
// folder (by URI, so a host added again finds its sets) and each domain's retention.
import { join } from 'node:path';
import { z } from 'zod';
import { readJsonFile, writeJson } from '../storage/json-file.ts';
import type { Retention } from './store.ts';

const count = z.number().int().min(1).nullable();
const fileSchema = z.object({
  version: z.literal(1),
  locations: z.array(z.object({ uri: z.string().min(1), path: z.string().startsWith('/') })),
  retention: z.array(z.object({ uri: z.string().min(1), domain: z.string().min(1), keepSets: count, keepDays: count })),
  // Absent in files written before schedules existed.
  schedules: z
    .array(
      z.object({
        uri: z.string().min(1),
        domain: z.string().min(1),
        every: z.enum(['day', 'week']),
        at: z.string().regex(/^\d\d:\d\d$/),
        weekday: z.number().int().min(0).max(6),
        fullEvery: z.number().int().min(1),
        /** When the last scheduled run began (epoch ms); null before the first. */
        lastRunAt: z.number().int().min(0).nullable(),
        runs: z.number().int().min(0),
      }),
    )
    .default([]),
});
export type ScheduleEntry = SettingsFile['schedules'][number];
type SettingsFile = z.output<typeof fileSchema>;

// Until the user sets a retention, a domain keeps its last 7 good sets.
export const defaultRetention: Retention = { keepSets: 7, keepDays: null };

export class BackupSettings {
  /** Null: kept for this run only. */
  readonly path: string | null;
  #file: SettingsFile = { version: 1, locations: [], retention: [], schedules: [] };
  #loaded: Promise<void> | null = null;

  constructor(dataDir: string | undefined) {
    this.path = dataDir === undefined ? null : join(dataDir, 'backups.json');
  }

  #load(): Promise<void> {
    const path = this.path;
    if (path === null) return Promise.resolve();
    return (this.#loaded ??= readJsonFile(path, fileSchema).then(({ value }) => {
      if (value) this.#file = value;
    }));
  }

  async #save(): Promise<void> {
    if (this.path !== null) await writeJson(this.path, this.#file);
  }

  async location(uri: string): Promise<string | null> {
    await this.#load();
    return this.#file.locations.find((l) => l.uri === uri)?.path ?? null;
  }

  async setLocation(uri: string, path: string): Promise<void> {
    await this.#load();
    this.#file.locations = [...this.#file.locations.filter((l) => l.uri !== uri), { uri, path }];
    await this.#save();
  }

  async retention(uri: string, domain: string): Promise<Retention> {
    await this.#load();
    const r = this.#file.retention.find((e) => e.uri === uri && e.domain === domain);
    return r ? { keepSets: r.keepSets, keepDays: r.keepDays } : defaultRetention;
  }

  /** The retention set for the domain; null while it keeps the default. */
  async chosenRetention(uri: string, domain: string): Promise<Retention | null> {
    await this.#load();
    const r = this.#file.retention.find((e) => e.uri === uri && e.domain === domain);
    return r ? { keepSets: r.keepSets, keepDays: r.keepDays } : null;
  }

  async setRetention(uri: string, domain: string, retention: Retention): Promise<void> {
    await this.#load();
    this.#file.retention = [...this.#file.retention.filter((e) => e.uri !== uri || e.domain !== domain), { uri, domain, ...retention }];
    await this.#save();
  }

  async schedules(): Promise<ScheduleEntry[]> {
    await this.#load();
    return this.#file.schedules.map((e) => ({ ...e }));
  }

  /** Sets (or with null removes) a domain's schedule; a new schedule starts counting runs afresh. */
  async setSchedule(uri: string, domain: string, schedule: Omit<ScheduleEntry, 'uri' | 'domain' | 'lastRunAt' | 'runs'> | null, now: number): Promise<void> {
    await this.#load();
    const others = this.#file.schedules.filter((e) => e.uri !== uri || e.domain !== domain);
    this.#file.schedules = schedule === null ? others : [...others, { uri, domain, ...schedule, lastRunAt: now, runs: 0 }];
    await this.#save();
  }

  /** Records that a scheduled run began. */
  async ran(uri: string, domain: string, at: number): Promise<void> {
    await this.#load();
    const entry = this.#file.schedules.find((e) => e.uri === uri && e.domain === domain);
    if (!entry) return;
    entry.lastRunAt = at;
    entry.runs += 1;
    await this.#save();
  }
}
