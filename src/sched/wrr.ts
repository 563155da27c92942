// wrr — weighted round robin (ip_vs_wrr.c). State: cursor, current weight cw, max
// weight mw (less gcd-1), step di = gcd of the weights. Each pass over the list picks
// destinations with weight >= cw; at the end of a pass cw drops by di and wraps to mw.
// Any list change resets the cursor to the head and re-derives cw (ip_vs_wrr_dest_changed).
import { DEST_AVAILABLE, DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";
import { SLOT_CURSOR, SLOT_CW, SLOT_GEN, SLOT_WORDS, schedulerSlot } from "./shared.ts";

function gcd(a: number, b: number): number {
  while (b !== 0) { const t = a % b; a = b; b = t; }
  return a;
}

export class WeightedRoundRobin implements Scheduler {
  readonly name = "wrr";
  private readonly own = new Int32Array(SLOT_WORDS);
  /** Where the cursor and the current weight cw live (sched/shared.ts). */
  private st: Int32Array<ArrayBufferLike> = this.own;
  private at = 0;
  private gen = 0;
  /** Rebuilt at least once: cw in the slot is this service's (not a previous user's). */
  private built = false;
  private mw = 0;
  private di = 1;

  constructor() {
    this.own[SLOT_CURSOR] = -1;
  }

  attach(svcId: number, gen: number): void {
    [this.st, this.at] = schedulerSlot(svcId, this.own);
    this.gen = gen;
  }

  rebuild(d: DestSet): void {
    let g = 0;
    let max = 0;
    for (let i = 0; i < d.count; i++) {
      const w = d.weight[i];
      if (w > 0) { g = g === 0 ? w : gcd(g, w); if (w > max) max = w; }
    }
    this.di = g === 0 ? 1 : g;
    this.mw = max - (this.di - 1);
    const st = this.st;
    const built = this.built;
    this.built = true;
    // Another worker already re-derived the shared position for this generation.
    if (st !== this.own && st[this.at + SLOT_GEN] >= this.gen) return;
    st[this.at + SLOT_GEN] = this.gen;
    st[this.at + SLOT_CURSOR] = -1;
    const cw = built ? st[this.at + SLOT_CW] : 0;
    if (cw > this.mw || cw === 0) st[this.at + SLOT_CW] = this.mw;
    else if (this.di > 1) st[this.at + SLOT_CW] = Math.trunc(cw / this.di) * this.di + 1;
  }

  schedule(d: DestSet): number {
    const n = d.count;
    if (this.mw <= 0 || n === 0) return NO_DEST;
    const st = this.st;
    const at = this.at;
    // Bounded: every weight level once plus one full pass; beyond that all are overloaded.
    let budget = n * (Math.trunc(this.mw / this.di) + 2);
    let i = st[at + SLOT_CURSOR];
    let cw = st[at + SLOT_CW];
    while (budget-- > 0) {
      i++;
      if (i >= n) {
        i = -1;
        cw -= this.di;
        if (cw <= 0) cw = this.mw;
        continue;
      }
      if (d.weight[i] >= cw && (d.flags[i] & DEST_AVAILABLE) !== 0 && !d.overloaded(i)) {
        st[at + SLOT_CURSOR] = i;
        st[at + SLOT_CW] = cw;
        return i;
      }
    }
    st[at + SLOT_CW] = cw;
    return NO_DEST;
  }
}

export const wrr: SchedulerFactory = () => new WeightedRoundRobin();
