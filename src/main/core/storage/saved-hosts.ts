// The hosts the user added (URI, label, read-only, limits), saved in hosts.json in the data folder
// and restored at every start. Not the window's list of hosts (the renderer's HostStore).
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import type { HostLimits } from '../../../shared/model.ts';
import { spaceGuardSettingsSchema, type SpaceGuardSettings } from '../../../shared/space-guard.ts';
import { readJsonFile, writeJson } from './json-file.ts';

export interface SavedHost {
  id: string;
  uri: string;
  label: string;
  readOnly: boolean;
  limits: HostLimits;
  /** Absent until the user changes the space guard's defaults. */
  spaceGuard?: SpaceGuardSettings;
}

export const noLimits: HostLimits = { maxConcurrentJobs: 0, bandwidthBudgetBytesPerSec: 0 };

const savedHostSchema = z.object({
  id: z.string().min(1),
  uri: z.string().min(1),
  label: z.string().min(1),
  readOnly: z.boolean(),
  limits: z.object({ maxConcurrentJobs: z.number().int().min(0), bandwidthBudgetBytesPerSec: z.number().int().min(0) }),
  spaceGuard: spaceGuardSettingsSchema.optional(),
});
const fileSchema = z.object({ version: z.literal(1), hosts: z.array(savedHostSchema) });

export class SavedHosts {
  readonly path: string;
  #hosts: SavedHost[] = [];

  constructor(dataDir: string) {
    this.path = join(dataDir, 'hosts.json');
  }

  /** Reads the saved hosts; returns a warning for the user when the file was invalid and moved aside. */
  async load(): Promise<{ hosts: SavedHost[]; warning: string | null }> {
    const { value, warning } = await readJsonFile(this.path, fileSchema);
    this.#hosts = value?.hosts ?? [];
    return { hosts: this.list(), warning };
  }

  list(): SavedHost[] {
    return this.#hosts.map((h) => ({ ...h, limits: { ...h.limits } }));
  }

  async add(host: Omit<SavedHost, 'id'>): Promise<SavedHost> {
    const saved = { ...host, id: `host-${randomUUID().slice(0, 8)}` };
    this.#hosts.push(saved);
    await this.#save();
    return saved;
  }

  async update(id: string, change: Partial<Omit<SavedHost, 'id'>>): Promise<void> {
    const host = this.#hosts.find((h) => h.id === id);
    if (!host) return;
    Object.assign(host, change);
    await this.#save();
  }

  async remove(id: string): Promise<void> {
    this.#hosts = this.#hosts.filter((h) => h.id !== id);
    await this.#save();
  }

  #save(): Promise<void> {
    return writeJson(this.path, { version: 1, hosts: this.#hosts });
  }
}
