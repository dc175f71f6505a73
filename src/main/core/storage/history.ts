// Finished jobs, kept across restarts of the app in its data folder, newest last.
import { join } from 'node:path';
import type { Job } from '../../../shared/model.ts';
import { readJson, writeJson } from './json-file.ts';

const keep = 1000;

export class JobHistory {
  readonly path: string;
  #jobs: Job[] = [];
  #saving: Promise<void> = Promise.resolve();

  constructor(dataDir: string) {
    this.path = join(dataDir, 'history.json');
  }

  async load(): Promise<void> {
    const raw = await readJson(this.path);
    const jobs = typeof raw === 'object' && raw !== null && 'jobs' in raw ? (raw as { jobs: unknown }).jobs : [];
    this.#jobs = Array.isArray(jobs) ? (jobs as Job[]) : [];
  }

  list(): Job[] {
    return this.#jobs.map((j) => ({ ...j }));
  }

  add(job: Job): Promise<void> {
    this.#jobs.push({ ...job });
    if (this.#jobs.length > keep) this.#jobs.splice(0, this.#jobs.length - keep);
    // Writes are chained so two jobs ending together never interleave their files.
    this.#saving = this.#saving.then(() => writeJson(this.path, { version: 1, jobs: this.#jobs })).catch(() => undefined);
    return this.#saving;
  }

  export(now = new Date()): { fileName: string; json: string } {
    const stamp = now.toISOString().replace(/[:.]/g, '-');
    return { fileName: `strata-history-${stamp}.json`, json: JSON.stringify({ exportedAt: now.toISOString(), jobs: this.#jobs }, null, 2) };
  }
}
