// rr — round robin (ip_vs_rr.c): a cursor over the list; the next usable destination
// after it wins, wrapping once. Weights > 0 are otherwise ignored. When the list
// changes, the cursor stays on the same destination, or moves back to its nearest
// surviving predecessor if that destination was deleted, as rr_del_dest does.
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";
import { SLOT_CURSOR, SLOT_GEN, SLOT_WORDS, schedulerSlot } from "./shared.ts";

export class RoundRobin implements Scheduler {
  readonly name = "rr";
  private readonly own = new Int32Array(SLOT_WORDS);
  /** Where the cursor (index of the last chosen destination; -1 = the list head) lives. */
  private st: Int32Array<ArrayBufferLike> = this.own;
  private at = 0;
  private gen = 0;
  private ids: Int32Array = new Int32Array(0);

  attach(svcId: number, gen: number): void {
    [this.st, this.at] = schedulerSlot(svcId, this.own);
    this.gen = gen;
  }

  rebuild(d: DestSet): void {
    const st = this.st;
    const c = this.at + SLOT_CURSOR;
    // Another worker already moved the shared cursor onto this generation's list.
    if (st !== this.own && st[this.at + SLOT_GEN] >= this.gen) {
      this.ids = d.id.slice();
      return;
    }
    let next = -1;
    for (let k = st[c]; k >= 0 && k < this.ids.length && next < 0; k--) {
      const id = this.ids[k];
      for (let i = 0; i < d.count; i++) if (d.id[i] === id) { next = i; break; }
    }
    st[c] = next;
    st[this.at + SLOT_GEN] = this.gen;
    this.ids = d.id.slice();
  }

  schedule(d: DestSet): number {
    const n = d.count;
    const c = this.at + SLOT_CURSOR;
    const cursor = this.st[c];
    for (let k = 1; k <= n; k++) {
      const i = (cursor + k) % n;
      if (d.usable(i)) { this.st[c] = i; return i; }
    }
    return NO_DEST;
  }
}

export const rr: SchedulerFactory = () => new RoundRobin();
