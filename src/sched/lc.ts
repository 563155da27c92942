// lc — least connection (ip_vs_lc.c): the usable destination with the smallest
// overhead (active*256 + inactive); weights only decide usability. Ties: first in list.
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

export class LeastConn implements Scheduler {
  readonly name = "lc";
  rebuild(): void {}
  schedule(d: DestSet): number {
    let best = NO_DEST;
    let loh = 0;
    for (let i = 0; i < d.count; i++) {
      if (!d.usable(i)) continue;
      const doh = d.overhead(i);
      if (best === NO_DEST || doh < loh) { best = i; loh = doh; }
    }
    return best;
  }
}

export const lc: SchedulerFactory = () => new LeastConn();
