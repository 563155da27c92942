// nq — never queue (ip_vs_nq.c). Walk the list skipping OVERLOAD and weight 0: the
// first destination with no active connection is returned at once ("an idle server
// never makes a job wait"). Otherwise the sed rule: least (active+1)/weight by
// cross-multiplication, ties keep the earlier (newer) destination. Unavailable (health)
// destinations are treated as absent. schedule(): no allocation.
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

export class NeverQueue implements Scheduler {
  readonly name = "nq";
  rebuild(): void {}
  schedule(d: DestSet): number {
    const n = d.count;
    let best = NO_DEST;
    let loh = 0;
    let lw = 0;
    for (let i = 0; i < n; i++) {
      if (!d.usable(i)) continue;
      const a = d.active(i);
      if (a === 0) return i;
      const doh = a + 1;
      const w = d.weight[i];
      if (best === NO_DEST || loh * w > doh * lw) { best = i; loh = doh; lw = w; }
    }
    return best;
  }
}

export const nq: SchedulerFactory = () => new NeverQueue();
