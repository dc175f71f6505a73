// Measured progress rate, smoothed so one slow or fast poll does not make the ETA jump.
// Progress counters can move backwards (a mirror's `end` grows, see docs/block-jobs.md), so a
// sample that goes back resets the estimate instead of producing a negative rate.
export class RateEstimator {
  readonly #alpha: number;
  #last: { at: number; cur: number; end: number } | null = null;
  #rate: number | null = null;

  constructor(alpha = 0.3) {
    this.#alpha = alpha;
  }

  sample(at: number, cur: number, end: number): void {
    const last = this.#last;
    this.#last = { at, cur, end };
    if (!last || at <= last.at) return;
    if (cur < last.cur || end !== last.end) {
      this.#rate = null;
      return;
    }
    const instant = ((cur - last.cur) * 1000) / (at - last.at);
    this.#rate = this.#rate === null ? instant : this.#alpha * instant + (1 - this.#alpha) * this.#rate;
  }

  get bytesPerSec(): number | null {
    return this.#rate === null ? null : Math.round(this.#rate);
  }

  etaSeconds(cur: number, end: number): number | null {
    if (this.#rate === null || this.#rate <= 0 || end <= 1) return null;
    return Math.max(0, Math.round((end - cur) / this.#rate));
  }
}
