// sed — shortest expected delay (ip_vs_sed.c). wlc's walk with overhead = activeconns + 1
// (the job being placed counts; inactive connections are ignored). The first usable
// destination starts as best; a later one replaces it when
// (active(best)+1) * w(d) > (active(d)+1) * w(best). Cross-multiplied, integer, exact in
// doubles (< 2^31 * 2^16). Ties keep the earlier (newer) destination. Weight 0 can never
// win (its side of the product is 0), so skipping it changes nothing; unavailable
// (health) destinations are treated as absent from the list.
// schedule(): no allocation.
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

export class ShortestExpectedDelay implements Scheduler {
  readonly name = "sed";
  rebuild(): void {}
  schedule(d: DestSet): number {
    const n = d.count;
    let best = -1;
    for (let i = 0; i < n; i++) if (d.usable(i)) { best = i; break; }
    if (best < 0) return NO_DEST;
    let loh = d.active(best) + 1;
    let lw = d.weight[best];
    for (let i = best + 1; i < n; i++) {
      if (!d.usable(i)) continue;
      const doh = d.active(i) + 1;
      const w = d.weight[i];
      if (loh * w > doh * lw) { best = i; loh = doh; lw = w; }
    }
    return best;
  }
}

export const sed: SchedulerFactory = () => new ShortestExpectedDelay();
