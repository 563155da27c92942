// lblcr — lblc with replication (ip_vs_lblcr.c). The cache maps a packet's DESTINATION
// address to a SET of destinations (newest member first, as list_add puts it) plus
// lastmod; storage is lblc's LocalityTable with LBLCR_SET_MAX ids per entry.
//  * Hit: lastuse = now; pick the set's weighted-least-connection member (available,
//    weight > 0, not OVERLOAD; ties keep the earlier member). Then, if the set has more
//    than one member and was not modified for more than `expirationSec`
//    (lblcr_expiration, 24 h), remove its most loaded member (highest overhead/weight
//    among weight > 0) and set lastmod. If a member was picked and is not "locally
//    overloaded" (see lblc.ts) use it; otherwise the wlc pick over the whole service,
//    added to the set when not already in it (lastmod = now).
//  * Miss: the wlc pick over the service; a new entry with a one-member set.
//  * Entry expiry and garbage collection: as lblc (lazy form of the 60-s timer).
// Bounds not in IPVS: a set holds at most LBLCR_SET_MAX members (adding to a full set
// drops its oldest member); destinations deleted from the service leave the sets at the
// next rebuild (IPVS keeps them, unusable, until the set shrinks). No allocation in
// schedule().
import type { Pkt } from "../wire/pkt.ts";
import {
  LOC_SWEEP_BUDGET, LocalityTable, available, indexById, locallyOverloaded, wlcPick,
} from "./lblc.ts";
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

export const LBLCR_SET_MAX = 16;

export class LocalityLeastConnReplicated implements Scheduler {
  readonly name = "lblcr";
  readonly table = new LocalityTable(LBLCR_SET_MAX);
  private byId: Int32Array = new Int32Array(0);

  rebuild(d: DestSet): void {
    this.byId = indexById(d);
    this.table.purge(this.byId);
  }

  private index(id: number): number {
    return id < this.byId.length ? this.byId[id] : -1;
  }

  /** ip_vs_dest_set_min: index of the set's weighted least-connection usable member, or -1. */
  private setMin(d: DestSet, s: number): number {
    const t = this.table;
    const b = s * LBLCR_SET_MAX;
    const n = t.size[s];
    let best = -1;
    let loh = 0;
    let lw = 0;
    for (let k = 0; k < n; k++) {
      const i = this.index(t.member[b + k]);
      if (i < 0 || d.overloaded(i) || !available(d, i)) continue;
      const w = d.weight[i];
      if (best < 0) {
        if (w > 0) { best = i; loh = d.overhead(i); lw = w; }
        continue;
      }
      const doh = d.overhead(i);
      if (loh * w > doh * lw) { best = i; loh = doh; lw = w; }
    }
    return best;
  }

  /** ip_vs_dest_set_max: position in the set of the most loaded member with weight > 0, or -1. */
  private setMax(d: DestSet, s: number): number {
    const t = this.table;
    const b = s * LBLCR_SET_MAX;
    const n = t.size[s];
    let most = -1;
    let moh = 0;
    let mw = 0;
    for (let k = 0; k < n; k++) {
      const i = this.index(t.member[b + k]);
      if (i < 0) continue;
      const w = d.weight[i];
      if (w <= 0) continue;
      const doh = d.overhead(i);
      if (most < 0 || moh * w < doh * mw) { most = k; moh = doh; mw = w; }
    }
    return most;
  }

  schedule(d: DestSet, p: Pkt): number {
    const t = this.table;
    const now = p.now;
    t.sweep(now, LOC_SWEEP_BUDGET);
    let s = t.find(p.dst0, p.dst1, p.dst2, p.dst3);
    if (s >= 0 && t.expired(s, now)) { t.remove(s); s = -1; }
    if (s >= 0) {
      t.lastuse[s] = now;
      const picked = this.setMin(d, s);
      // More than one member and unchanged for longer than the expiration: shrink.
      if (t.size[s] > 1 && now > t.lastmod[s] + t.expirationSec) {
        const k = this.setMax(d, s);
        if (k >= 0) { t.removeMemberAt(s, k); t.lastmod[s] = now; }
      }
      if (picked >= 0 && !locallyOverloaded(d, picked)) return picked;
      const best = wlcPick(d);
      if (best < 0) return NO_DEST;
      if (t.indexOf(s, d.id[best]) < 0) t.addMember(s, d.id[best], now);
      return best;
    }
    const best = wlcPick(d);
    if (best < 0) return NO_DEST;
    s = t.insert(p.dst0, p.dst1, p.dst2, p.dst3, now);
    if (s >= 0) t.addMember(s, d.id[best], now);
    return best;
  }
}

export const lblcr: SchedulerFactory = () => new LocalityLeastConnReplicated();
