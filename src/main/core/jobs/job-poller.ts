// Progress of running jobs, read while someone watches: libvirt sends no event for it. One round
// at a time; the next is due an interval after the last one ended, so a slow daemon is never
// asked twice at once.
import type { RawBlockJob } from '../../libvirt/types.ts';

/** The timer the poller waits on; tests hand in one they fire themselves. */
export interface PollTimer {
  set(fire: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimer: PollTimer = {
  set: (fire, ms) => setTimeout(fire, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface JobPollerDeps<T> {
  intervalMs: number;
  /** What to poll now; nothing means no round is scheduled. */
  targets(): T[];
  poll(target: T): Promise<RawBlockJob | null>;
  /** What the poll found for the target: its job, or none. */
  found(target: T, info: RawBlockJob | null): void;
  /** A poll that failed (daemon restarting, domain gone) is not an outcome; the caller says why. */
  failed(target: T, err: unknown): void;
  watched(): boolean;
  timer?: PollTimer;
}

export class JobPoller<T> {
  readonly #deps: JobPollerDeps<T>;
  readonly #timer: PollTimer;
  #handle: unknown = null;
  #polling = false;
  #disposed = false;

  constructor(deps: JobPollerDeps<T>) {
    this.#deps = deps;
    this.#timer = deps.timer ?? realTimer;
  }

  /** Makes sure a round is due, if there is anything to poll and someone watches. */
  schedule(): void {
    if (this.#disposed || this.#handle !== null || this.#polling || !this.#deps.watched() || this.#deps.targets().length === 0) return;
    this.#handle = this.#timer.set(() => {
      this.#handle = null;
      void this.#round();
    }, this.#deps.intervalMs);
  }

  dispose(): void {
    this.#disposed = true;
    if (this.#handle !== null) this.#timer.clear(this.#handle);
    this.#handle = null;
  }

  async #round(): Promise<void> {
    this.#polling = true;
    try {
      await Promise.all(
        this.#deps.targets().map(async (target) => {
          let info: RawBlockJob | null;
          try {
            info = await this.#deps.poll(target);
          } catch (err) {
            this.#deps.failed(target, err);
            return;
          }
          this.#deps.found(target, info);
        }),
      );
    } finally {
      this.#polling = false;
    }
    this.schedule();
  }
}
