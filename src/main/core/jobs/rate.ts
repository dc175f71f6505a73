// Measured progress rate over a sliding window of recent polls: steady enough for an ETA, and
// unbiased (an average of per-poll rates overweights the polls that caught a burst). It is the
// rate of progress through libvirt's cur/end, which runs ahead of the bytes copied where the
// chain has holes. Counters can move backwards (a mirror's `end` grows while the guest writes):
// such a sample restarts the window instead of producing a negative rate.
export class RateEstimator {
  readonly #windowMs: number;
  readonly #minSpanMs: number;
  #samples: { at: number; cur: number; end: number }[] = [];

  constructor(windowMs = 3000, minSpanMs = 500) {
    this.#windowMs = windowMs;
    this.#minSpanMs = minSpanMs;
  }

  sample(at: number, cur: number, end: number): void {
    const last = this.#samples.at(-1);
    if (last && at <= last.at) return;
    if (last && (cur < last.cur || end !== last.end)) this.#samples = [];
    this.#samples.push({ at, cur, end });
    // Keep one sample at or beyond the window's start, so the span covers the whole window.
    while (this.#samples.length > 2 && this.#samples[1]!.at <= at - this.#windowMs) this.#samples.shift();
  }

  get bytesPerSec(): number | null {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last.at - first.at < this.#minSpanMs) return null;
    return Math.round(((last.cur - first.cur) * 1000) / (last.at - first.at));
  }

  etaSeconds(cur: number, end: number): number | null {
    const rate = this.bytesPerSec;
    if (rate === null || rate <= 0 || end <= 1) return null;
    return Math.max(0, Math.round((end - cur) / rate));
  }
}
