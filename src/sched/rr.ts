// rr — round robin (ip_vs_rr.c): a cursor over the list; the next usable destination
// after it wins, wrapping once. Weights > 0 are otherwise ignored. When the list
// changes, the cursor stays on the same destination, or moves back to its nearest
// surviving predecessor if that destination was deleted, as rr_del_dest does.
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

export class RoundRobin implements Scheduler {
  readonly name = "rr";
  /** Index of the last chosen destination; -1 = the list head. */
  private cursor = -1;
  private ids: Int32Array = new Int32Array(0);

  rebuild(d: DestSet): void {
    let next = -1;
    for (let k = this.cursor; k >= 0 && next < 0; k--) {
      const id = this.ids[k];
      for (let i = 0; i < d.count; i++) if (d.id[i] === id) { next = i; break; }
    }
    this.cursor = next;
    this.ids = d.id.slice();
  }

  schedule(d: DestSet): number {
    const n = d.count;
    for (let k = 1; k <= n; k++) {
      const i = (this.cursor + k) % n;
      if (d.usable(i)) { this.cursor = i; return i; }
    }
    return NO_DEST;
  }
}

export const rr: SchedulerFactory = () => new RoundRobin();
