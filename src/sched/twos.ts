// twos — power of two choices (ip_vs_twos.c, Linux 6.x). total = sum of the weights of
// the usable destinations; two independent uniform draws r1, r2 in [0, total] (the
// kernel's prandom_u32() % (total + 1)); walking the list and subtracting each usable
// weight, the first destination where a running value drops to <= 0 is that draw's
// choice. Choice 2 wins only if w2 * overhead1 > w1 * overhead2 (overhead =
// active*256 + inactive, cross-multiplied, exact in doubles), else choice 1.
// Randomness: Math.random (the factory); tests inject a seeded source through the
// constructor. schedule(): no allocation.
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

export class PowerOfTwo implements Scheduler {
  readonly name = "twos";
  /** Uniform in [0, 1), like Math.random. */
  private readonly random: () => number;
  constructor(random: () => number = Math.random) {
    this.random = random;
  }
  rebuild(): void {}
  schedule(d: DestSet): number {
    const n = d.count;
    let total = 0;
    for (let i = 0; i < n; i++) if (d.usable(i)) total += d.weight[i];
    if (total === 0) return NO_DEST;
    total += 1; // draws are inclusive of total, as in the kernel
    let r1 = Math.floor(this.random() * total);
    let r2 = Math.floor(this.random() * total);
    let c1 = NO_DEST;
    let c2 = NO_DEST;
    let w1 = 0;
    let w2 = 0;
    let o1 = 0;
    let o2 = 0;
    for (let i = 0; i < n; i++) {
      if (!d.usable(i)) continue;
      const w = d.weight[i];
      r1 -= w;
      r2 -= w;
      if (r1 <= 0 && c1 === NO_DEST) { c1 = i; w1 = w; o1 = d.overhead(i); }
      if (r2 <= 0 && c2 === NO_DEST) { c2 = i; w2 = w; o2 = d.overhead(i); }
      if (c1 !== NO_DEST && c2 !== NO_DEST) break;
    }
    return w2 * o1 > w1 * o2 ? c2 : c1;
  }
}

export const twos: SchedulerFactory = () => new PowerOfTwo();
