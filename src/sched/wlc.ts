// wlc — weighted least connection, IPVS's default (ip_vs_wlc.c). The first usable
// destination starts as best; a later one (not overloaded) replaces it when
// overhead(best) * w(d) > overhead(d) * w(best). Cross-multiplying instead of dividing
// keeps the order exact in integers; products stay below 2^53 for any real load, so
// plain JS numbers are exact. Ties keep the earlier (newer) destination.
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

export class WeightedLeastConn implements Scheduler {
  readonly name = "wlc";
  rebuild(): void {}
  schedule(d: DestSet): number {
    const n = d.count;
    let best = -1;
    for (let i = 0; i < n; i++) if (d.usable(i)) { best = i; break; }
    if (best < 0) return NO_DEST;
    let loh = d.overhead(best);
    let lw = d.weight[best];
    for (let i = best + 1; i < n; i++) {
      // IPVS only skips OVERLOAD here (weight 0 can never win the product); usable()
      // also skips a destination a health check took out of service.
      if (!d.usable(i)) continue;
      const doh = d.overhead(i);
      if (loh * d.weight[i] > doh * lw) { best = i; loh = doh; lw = d.weight[i]; }
    }
    return best;
  }
}

export const wlc: SchedulerFactory = () => new WeightedLeastConn();
