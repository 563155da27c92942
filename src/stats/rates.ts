// IPVS's rate estimator (ip_vs_est.c, reference §4.9): every 2 seconds, per stats object,
// an EWMA with weight 1/4 of the last 2-second rate, kept in fixed point —
//   cps, pps: scaled by 2^10 (Δ over 2 s << 9), reported as (x + 0x1FF) >> 10
//   bps:      scaled by 2^5  (Δ over 2 s << 4), reported as (x + 0xF) >> 5
// Byte counts pass 2^31, so the shifts are written as exact integer divisions on doubles.
// Control thread only. Objects are small integer keys (the daemon's stats slots), kept
// in flat arrays indexed by key: at 100 000 destinations a sample is a loop over numbers,
// where a map of per-object arrays cost a tenth of a second every 2 seconds.
import type { Stats } from "../control/protocol.ts";

/** Sampling period, seconds (IPVS: 2 s). */
export const RATE_PERIOD_SEC = 2;

/** Per key k: the last raw totals at [k * 10 + i], the scaled rates at [k * 10 + 5 + i], i in Stats field order. */
const WORDS = 10;
const SHIFT_IN = [9, 9, 9, 4, 4];
const SHIFT_OUT = [10, 10, 10, 5, 5];

function shr(x: number, n: number): number {
  return Math.floor(x / 2 ** n);
}

export class RateEstimator {
  private v = new Float64Array(0);
  /** Per key: the number of the sample (or reset) that last saw it; 0: no estimate. */
  private seen = new Uint32Array(0);
  private samples = 1;
  private readonly scratch = new Float64Array(5);

  /** Takes one 2-second sample for each object, `read(key)` giving its raw totals now. */
  sample(keys: Iterable<number>, read: (key: number) => Stats): void {
    this.sampleInto([...keys], (key, out) => {
      const now = read(key);
      out[0] = now.conns; out[1] = now.inpkts; out[2] = now.outpkts; out[3] = now.inbytes; out[4] = now.outbytes;
    });
  }

  /** sample() with `read(key, out)` writing the five totals into `out` (no object per key). */
  sampleInto(keys: ArrayLike<number>, read: (key: number, out: Float64Array) => void): void {
    const n = ++this.samples;
    const now = this.scratch;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k];
      read(key, now);
      this.ensure(key);
      const b = key * WORDS;
      const v = this.v;
      if (this.seen[key] === 0) {
        // A new object starts from its current totals with zero rates, as IPVS's does.
        for (let i = 0; i < 5; i++) { v[b + i] = now[i]; v[b + 5 + i] = 0; }
      } else {
        for (let i = 0; i < 5; i++) {
          const delta = now[i] - v[b + i];
          v[b + i] = now[i];
          v[b + 5 + i] += shr(delta * 2 ** SHIFT_IN[i] - v[b + 5 + i], 2);
        }
      }
      this.seen[key] = n;
    }
    // Objects this sample did not see are gone.
    const seen = this.seen;
    for (let k = 0; k < seen.length; k++) if (seen[k] !== n) seen[k] = 0;
  }

  /** The rates as -L --rate shows them: cps, inpps, outpps, inbps, outbps in the Stats fields. */
  rate(key: number): Stats {
    if (key >= this.seen.length || this.seen[key] === 0) return { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
    const b = key * WORDS + 5;
    const r = (i: number) => shr(this.v[b + i] + (2 ** SHIFT_OUT[i] - 1), SHIFT_OUT[i]);
    return { conns: r(0), inpkts: r(1), outpkts: r(2), inbytes: r(3), outbytes: r(4) };
  }

  /** -Z: rates restart from zero and the current totals (ip_vs_zero_estimator). */
  reset(key: number, now: Stats): void {
    this.resetTotals(key, [now.conns, now.inpkts, now.outpkts, now.inbytes, now.outbytes], 0);
  }

  /** reset() with the totals at totals[at .. at + 4], in Stats field order (no object per key). */
  resetTotals(key: number, totals: ArrayLike<number>, at: number): void {
    this.ensure(key);
    const b = key * WORDS;
    const v = this.v;
    for (let i = 0; i < 5; i++) {
      v[b + i] = totals[at + i];
      v[b + 5 + i] = 0;
    }
    this.seen[key] = this.samples;
  }

  /** Room for `key` (keys are small: the arrays grow to the largest one seen). */
  private ensure(key: number): void {
    if (key < this.seen.length) return;
    let n = Math.max(64, this.seen.length);
    while (n <= key) n *= 2;
    const v = new Float64Array(n * WORDS);
    v.set(this.v);
    const seen = new Uint32Array(n);
    seen.set(this.seen);
    this.v = v;
    this.seen = seen;
  }
}
