// wrr — weighted round robin (ip_vs_wrr.c). State: cursor, current weight cw, max
// weight mw (less gcd-1), step di = gcd of the weights. Each pass over the list picks
// destinations with weight >= cw; at the end of a pass cw drops by di and wraps to mw.
// Any list change resets the cursor to the head and re-derives cw (ip_vs_wrr_dest_changed).
import { DEST_AVAILABLE, DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

function gcd(a: number, b: number): number {
  while (b !== 0) { const t = a % b; a = b; b = t; }
  return a;
}

export class WeightedRoundRobin implements Scheduler {
  readonly name = "wrr";
  private cursor = -1;
  private cw = 0;
  private mw = 0;
  private di = 1;

  rebuild(d: DestSet): void {
    let g = 0;
    let max = 0;
    for (let i = 0; i < d.count; i++) {
      const w = d.weight[i];
      if (w > 0) { g = g === 0 ? w : gcd(g, w); if (w > max) max = w; }
    }
    this.di = g === 0 ? 1 : g;
    this.mw = max - (this.di - 1);
    this.cursor = -1;
    if (this.cw > this.mw || this.cw === 0) this.cw = this.mw;
    else if (this.di > 1) this.cw = Math.trunc(this.cw / this.di) * this.di + 1;
  }

  schedule(d: DestSet): number {
    const n = d.count;
    if (this.mw <= 0 || n === 0) return NO_DEST;
    // Bounded: every weight level once plus one full pass; beyond that all are overloaded.
    let budget = n * (Math.trunc(this.mw / this.di) + 2);
    let i = this.cursor;
    while (budget-- > 0) {
      i++;
      if (i >= n) {
        i = -1;
        this.cw -= this.di;
        if (this.cw <= 0) this.cw = this.mw;
        continue;
      }
      if (d.weight[i] >= this.cw && (d.flags[i] & DEST_AVAILABLE) !== 0 && !d.overloaded(i)) {
        this.cursor = i;
        return i;
      }
    }
    return NO_DEST;
  }
}

export const wrr: SchedulerFactory = () => new WeightedRoundRobin();
