// ovf — overflow (ip_vs_ovf.c). Among destinations with weight > 0, not OVERLOAD and
// activeconns <= weight, the highest weight wins (ties: the earlier, newer one). A
// destination takes new connections until its ACTIVE count exceeds its weight, then
// traffic overflows to the next-highest weight. Inactive connections (and so all UDP)
// are not counted. Unavailable (health) destinations are treated as absent. No allocation.
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

export class Overflow implements Scheduler {
  readonly name = "ovf";
  rebuild(): void {}
  schedule(d: DestSet): number {
    const n = d.count;
    let best = NO_DEST;
    let hw = 0;
    for (let i = 0; i < n; i++) {
      const w = d.weight[i];
      if (!d.usable(i) || d.active(i) > w) continue;
      if (best === NO_DEST || w > hw) { best = i; hw = w; }
    }
    return best;
  }
}

export const ovf: SchedulerFactory = () => new Overflow();
