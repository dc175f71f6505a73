// Bandwidth changes of one job, sent to libvirt one at a time and at most one per interval, the
// latest value last. The renderer's slider throttles itself, but the contract does not: any
// client can ask faster than libvirt answers. Measured on QEMU 7.2: calls sent side by side run on
// the addon's worker threads and may land in any order (the first value asked for could stay),
// and every block-job-set-speed wakes the throttled job at once, so a stream of changes lets a
// 1 MiB/s pull copy 33 MiB in 2 s. Here a change asked for while another waits or is in flight
// only replaces the value waiting to be sent.

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

interface Lane {
  /** The value to send next, null when none waits. */
  waiting: number | null;
  /** Callers whose value is `waiting` or was replaced by it. */
  waiters: Waiter[];
}

export class SpeedChanges {
  readonly #lanes = new Map<string, Lane>();
  readonly #intervalMs: number;

  constructor(intervalMs = 200) {
    this.#intervalMs = intervalMs;
  }

  /**
   * Sends `value` for `key` through `send`, at once if no call for `key` was sent within the
   * interval, otherwise in the next call, unless a later value replaces it first. Resolves once
   * this value or a later one is in force; rejects with the error of the call that carried it.
   */
  apply(key: string, value: number, send: (value: number) => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      const lane = this.#lanes.get(key);
      if (lane) {
        lane.waiting = value;
        lane.waiters.push({ resolve, reject });
        return;
      }
      const fresh: Lane = { waiting: value, waiters: [{ resolve, reject }] };
      this.#lanes.set(key, fresh);
      void this.#drain(key, fresh, send);
    });
  }

  // The lane stays for one interval after each call, so the next change waits its turn.
  async #drain(key: string, lane: Lane, send: (value: number) => Promise<void>): Promise<void> {
    try {
      while (lane.waiting !== null) {
        const value = lane.waiting;
        const waiters = lane.waiters.splice(0);
        lane.waiting = null;
        try {
          await send(value);
          for (const w of waiters) w.resolve();
        } catch (err) {
          for (const w of waiters) w.reject(err);
        }
        await sleep(this.#intervalMs);
      }
    } finally {
      this.#lanes.delete(key);
    }
  }
}
