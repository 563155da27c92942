// fo — weighted fail-over (ip_vs_fo.c). The destination with the highest weight,
// strictly greater than the best so far starting from 0 (so weight 0 never qualifies),
// skipping OVERLOAD. Ties keep the earlier (newer) destination; connection counts are
// ignored. Unavailable (health) destinations are treated as absent. No allocation.
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

export class WeightedFailOver implements Scheduler {
  readonly name = "fo";
  rebuild(): void {}
  schedule(d: DestSet): number {
    const n = d.count;
    let best = NO_DEST;
    let hw = 0;
    for (let i = 0; i < n; i++) {
      const w = d.weight[i];
      if (w > hw && d.usable(i)) { best = i; hw = w; }
    }
    return best;
  }
}

export const fo: SchedulerFactory = () => new WeightedFailOver();
