// IPVS's rate estimator (ip_vs_est.c, reference §4.9): every 2 seconds, per stats object,
// an EWMA with weight 1/4 of the last 2-second rate, kept in fixed point —
//   cps, pps: scaled by 2^10 (Δ over 2 s << 9), reported as (x + 0x1FF) >> 10
//   bps:      scaled by 2^5  (Δ over 2 s << 4), reported as (x + 0xF) >> 5
// Byte counts pass 2^31, so the shifts are written as exact integer divisions on doubles.
// Control thread only.
import type { Stats } from "../control/protocol.ts";

/** Sampling period, seconds (IPVS: 2 s). */
export const RATE_PERIOD_SEC = 2;

// Per object: last raw totals [0..4], scaled rates [5..9], in Stats field order.
const FIELDS = ["conns", "inpkts", "outpkts", "inbytes", "outbytes"] as const;
const SHIFT_IN = [9, 9, 9, 4, 4];
const SHIFT_OUT = [10, 10, 10, 5, 5];

function shr(x: number, n: number): number {
  return Math.floor(x / 2 ** n);
}

export class RateEstimator {
  private readonly objs = new Map<number, Float64Array>();

  /** Takes one 2-second sample for each object, `read(key)` giving its raw totals now. */
  sample(keys: Iterable<number>, read: (key: number) => Stats): void {
    const live = new Set<number>();
    for (const key of keys) {
      live.add(key);
      const now = read(key);
      let o = this.objs.get(key);
      if (!o) {
        // A new object starts from its current totals with zero rates, as IPVS's does.
        o = new Float64Array(10);
        FIELDS.forEach((f, i) => { o![i] = now[f]; });
        this.objs.set(key, o);
        continue;
      }
      for (let i = 0; i < 5; i++) {
        const cur = now[FIELDS[i]];
        const delta = cur - o[i];
        o[i] = cur;
        o[5 + i] += shr(delta * 2 ** SHIFT_IN[i] - o[5 + i], 2);
      }
    }
    for (const k of [...this.objs.keys()]) if (!live.has(k)) this.objs.delete(k);
  }

  /** The rates as -L --rate shows them: cps, inpps, outpps, inbps, outbps in the Stats fields. */
  rate(key: number): Stats {
    const o = this.objs.get(key);
    const r = (i: number) => (o ? shr(o[5 + i] + (2 ** SHIFT_OUT[i] - 1), SHIFT_OUT[i]) : 0);
    return { conns: r(0), inpkts: r(1), outpkts: r(2), inbytes: r(3), outbytes: r(4) };
  }

  /** -Z: rates restart from zero and the current totals (ip_vs_zero_estimator). */
  reset(key: number, now: Stats): void {
    const o = new Float64Array(10);
    FIELDS.forEach((f, i) => { o[i] = now[f]; });
    this.objs.set(key, o);
  }
}
