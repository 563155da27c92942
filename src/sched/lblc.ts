// lblc — locality-based least connection (ip_vs_lblc.c). A per-service cache keyed by
// the packet's DESTINATION address (for a plain VIP service every packet has the same
// one, so everything sticks to one server; lblc is for fwmark/transparent cache
// clusters). Entry = (address → destination, lastuse).
//  * Hit: lastuse = now; use the cached destination if it is in the list, available,
//    weight > 0 and not "locally overloaded" (active > weight AND some destination of
//    the service has 2*active < weight). The OVERLOAD flag is NOT checked on this path.
//  * Otherwise: the wlc pick over the service (skipping OVERLOAD, weight 0 and
//    unavailable), stored in the entry (created if missing).
//  * Expiry, done lazily instead of the kernel's 60-s timer: an entry idle for at least
//    `expirationSec` (lblc_expiration, 24 h) is dropped when a lookup meets it or the
//    per-call sweep reaches it (the kernel's 30-minute full check drops it within
//    [24 h, 24.5 h)); while the table holds more than MAX_SIZE = 16 × 1024 entries, the
//    sweep drops entries idle ≥ 6 min, at most min((entries − MAX_SIZE)·4/3, MAX_SIZE/2)
//    per 60-s period, as ip_vs_lblc_check_expire does.
//
// LocalityTable is the storage shared with lblcr: flat typed arrays, open addressing
// with linear probing and backward-shift deletion (no tombstones), allocated once per
// service (lblc ≈ 0.9 MiB, lblcr with 16-member sets ≈ 2.9 MiB). SLOTS = 32 K and at most
// HARD_CAP = 24 K live entries (75 % load): 8 K of headroom above the kernel's GC
// threshold of 16 K, where its 6-minute rule starts (IPVS itself has no hard limit). At
// HARD_CAP a new address is served but not cached — the kernel's "if we fail to create
// a cache entry, we'll just use the valid dest".
// Destinations are stored by stable id; rebuild() drops ids that left the service.
// schedule(): no allocation.
import type { Pkt } from "../wire/pkt.ts";
import { DEST_AVAILABLE, DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

export const LOC_SLOT_BITS = 15;
export const LOC_SLOTS = 1 << LOC_SLOT_BITS;
/** IP_VS_LBLC_TAB_SIZE * 16: above this many entries the 6-minute rule applies. */
export const LOC_MAX_SIZE = 1024 * 16;
/** Live entries at most (75 % of the slots). */
export const LOC_HARD_CAP = (LOC_SLOTS * 3) >> 2;
/** CHECK_EXPIRE_INTERVAL, ENTRY_TIMEOUT and DEFAULT_EXPIRATION, in seconds. */
export const LOC_CHECK_INTERVAL_SEC = 60;
export const LOC_ENTRY_TIMEOUT_SEC = 6 * 60;
export const LOC_DEFAULT_EXPIRATION_SEC = 24 * 60 * 60;
/** Slots the sweep visits per schedule() call (a full pass every 8 K calls). */
export const LOC_SWEEP_BUDGET = 4;
const GOLDEN_RATIO_32 = 0x61c88647;

/**
 * Address → destination-id set, with lastuse and lastmod per entry. `width` ids per
 * entry: 1 for lblc, the set bound for lblcr. Members are kept newest first.
 */
export class LocalityTable {
  readonly width: number;
  /** Address words, 4 per slot. */
  readonly key = new Int32Array(LOC_SLOTS * 4);
  readonly used = new Uint8Array(LOC_SLOTS);
  readonly lastuse = new Float64Array(LOC_SLOTS);
  readonly lastmod = new Float64Array(LOC_SLOTS);
  readonly size = new Uint8Array(LOC_SLOTS);
  readonly member: Int32Array;
  count = 0;
  /** Idle limit of the full check (lblc_expiration / lblcr_expiration), seconds. */
  expirationSec = LOC_DEFAULT_EXPIRATION_SEC;
  private rover = 0;
  /** Entries the 6-minute rule may still drop in this 60-s period, and when the next period starts. */
  private goal = 0;
  private nextCheck = -Infinity;

  constructor(width: number) {
    this.width = width;
    this.member = new Int32Array(LOC_SLOTS * width);
  }

  private home(s: number): number {
    const b = s * 4;
    return Math.imul(this.key[b] ^ this.key[b + 1] ^ this.key[b + 2] ^ this.key[b + 3], GOLDEN_RATIO_32) >>> (32 - LOC_SLOT_BITS);
  }

  /** Slot of the address, or -1. */
  find(a0: number, a1: number, a2: number, a3: number): number {
    const mask = LOC_SLOTS - 1;
    let s = Math.imul(a0 ^ a1 ^ a2 ^ a3, GOLDEN_RATIO_32) >>> (32 - LOC_SLOT_BITS);
    const key = this.key;
    while (this.used[s] !== 0) {
      const b = s * 4;
      if (key[b] === a0 && key[b + 1] === a1 && key[b + 2] === a2 && key[b + 3] === a3) return s;
      s = (s + 1) & mask;
    }
    return -1;
  }

  /** New empty entry for an address known to be absent; -1 when HARD_CAP entries exist. */
  insert(a0: number, a1: number, a2: number, a3: number, now: number): number {
    if (this.count >= LOC_HARD_CAP) return -1;
    const mask = LOC_SLOTS - 1;
    let s = Math.imul(a0 ^ a1 ^ a2 ^ a3, GOLDEN_RATIO_32) >>> (32 - LOC_SLOT_BITS);
    while (this.used[s] !== 0) s = (s + 1) & mask;
    const b = s * 4;
    this.key[b] = a0; this.key[b + 1] = a1; this.key[b + 2] = a2; this.key[b + 3] = a3;
    this.used[s] = 1;
    this.lastuse[s] = now;
    this.lastmod[s] = now;
    this.size[s] = 0;
    this.count++;
    return s;
  }

  /** Deletes slot s, shifting later entries of its probe run back (no tombstones). */
  remove(s: number): void {
    const mask = LOC_SLOTS - 1;
    const w = this.width;
    let hole = s;
    let j = s;
    for (;;) {
      j = (j + 1) & mask;
      if (this.used[j] === 0) break;
      const h = this.home(j);
      // The entry at j may move into the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? h > hole && h <= j : h > hole || h <= j;
      if (stays) continue;
      for (let q = 0; q < 4; q++) this.key[hole * 4 + q] = this.key[j * 4 + q];
      for (let q = 0; q < w; q++) this.member[hole * w + q] = this.member[j * w + q];
      this.lastuse[hole] = this.lastuse[j];
      this.lastmod[hole] = this.lastmod[j];
      this.size[hole] = this.size[j];
      hole = j;
    }
    this.used[hole] = 0;
    this.size[hole] = 0;
    this.count--;
  }

  /** True when the entry has been idle for the full expiration (the full check would drop it). */
  expired(s: number, now: number): boolean {
    return now - this.lastuse[s] >= this.expirationSec;
  }

  /**
   * Visits `budget` slots from the rover: drops entries past the full expiration, and,
   * while the 60-s period's goal lasts, entries idle ≥ ENTRY_TIMEOUT.
   */
  sweep(now: number, budget: number): void {
    if (now >= this.nextCheck) {
      this.nextCheck = now + LOC_CHECK_INTERVAL_SEC;
      const over = this.count - LOC_MAX_SIZE;
      this.goal = over > 0 ? Math.min(Math.trunc((over * 4) / 3), LOC_MAX_SIZE >> 1) : 0;
    }
    const mask = LOC_SLOTS - 1;
    for (let k = 0; k < budget; k++) {
      const s = this.rover;
      if (this.used[s] !== 0) {
        const idle = now - this.lastuse[s];
        if (idle >= this.expirationSec) { this.remove(s); continue; }
        if (this.goal > 0 && idle >= LOC_ENTRY_TIMEOUT_SEC) { this.remove(s); this.goal--; continue; }
      }
      this.rover = (s + 1) & mask;
    }
  }

  /** Position of destination `id` in entry s, or -1. */
  indexOf(s: number, id: number): number {
    const b = s * this.width;
    const n = this.size[s];
    for (let k = 0; k < n; k++) if (this.member[b + k] === id) return k;
    return -1;
  }

  /** Adds `id` as the newest member (dropping the oldest if the set is full); lastmod = now. */
  addMember(s: number, id: number, now: number): void {
    const b = s * this.width;
    let n = this.size[s];
    if (n === this.width) n--;
    for (let k = n; k > 0; k--) this.member[b + k] = this.member[b + k - 1];
    this.member[b] = id;
    this.size[s] = n + 1;
    this.lastmod[s] = now;
  }

  /** Removes the member at position k (the caller updates lastmod where IPVS does). */
  removeMemberAt(s: number, k: number): void {
    const b = s * this.width;
    const n = this.size[s] - 1;
    for (let q = k; q < n; q++) this.member[b + q] = this.member[b + q + 1];
    this.size[s] = n;
  }

  /** Control side: drops members whose destination id left the service (`byId[id] < 0` or out of range). */
  purge(byId: Int32Array): void {
    for (let s = 0; s < LOC_SLOTS; s++) {
      if (this.used[s] === 0) continue;
      const b = s * this.width;
      for (let k = this.size[s] - 1; k >= 0; k--) {
        const id = this.member[b + k];
        if (id >= byId.length || byId[id] < 0) this.removeMemberAt(s, k);
      }
    }
  }
}

/** id → index in `d`, -1 for absent ids (built in rebuild, read in schedule). */
export function indexById(d: DestSet): Int32Array {
  let max = -1;
  for (let i = 0; i < d.count; i++) if (d.id[i] > max) max = d.id[i];
  const m = new Int32Array(max + 1).fill(-1);
  for (let i = 0; i < d.count; i++) m[d.id[i]] = i;
  return m;
}

export function available(d: DestSet, i: number): boolean {
  return (d.flags[i] & DEST_AVAILABLE) !== 0;
}

/**
 * The lblc/lblcr "is_overloaded": active > weight and some destination of the service
 * has 2*active < weight (there is a clearly less loaded server to move to).
 */
export function locallyOverloaded(d: DestSet, i: number): boolean {
  if (d.active(i) <= d.weight[i]) return false;
  for (let j = 0; j < d.count; j++) if (available(d, j) && d.active(j) * 2 < d.weight[j]) return true;
  return false;
}

/** __ip_vs_lblc_schedule: weighted least connection over the service (wlc rule). */
export function wlcPick(d: DestSet): number {
  const n = d.count;
  let best = -1;
  for (let i = 0; i < n; i++) if (d.usable(i)) { best = i; break; }
  if (best < 0) return NO_DEST;
  let loh = d.overhead(best);
  let lw = d.weight[best];
  for (let i = best + 1; i < n; i++) {
    if (!d.usable(i)) continue;
    const doh = d.overhead(i);
    const w = d.weight[i];
    if (loh * w > doh * lw) { best = i; loh = doh; lw = w; }
  }
  return best;
}

export class LocalityLeastConn implements Scheduler {
  readonly name = "lblc";
  readonly table = new LocalityTable(1);
  private byId: Int32Array = new Int32Array(0);

  rebuild(d: DestSet): void {
    this.byId = indexById(d);
    this.table.purge(this.byId);
  }

  schedule(d: DestSet, p: Pkt): number {
    const t = this.table;
    const now = p.now;
    t.sweep(now, LOC_SWEEP_BUDGET);
    let s = t.find(p.dst0, p.dst1, p.dst2, p.dst3);
    if (s >= 0 && t.expired(s, now)) { t.remove(s); s = -1; }
    if (s >= 0) {
      t.lastuse[s] = now;
      if (t.size[s] !== 0) {
        const id = t.member[s];
        const i = id < this.byId.length ? this.byId[id] : -1;
        if (i >= 0 && available(d, i) && d.weight[i] > 0 && !locallyOverloaded(d, i)) return i;
      }
    }
    const best = wlcPick(d);
    if (best < 0) return NO_DEST;
    if (s < 0) s = t.insert(p.dst0, p.dst1, p.dst2, p.dst3, now);
    if (s >= 0) {
      // ip_vs_lblc_new: a different destination replaces the entry (fresh lastuse).
      if (t.size[s] === 0 || t.member[s] !== d.id[best]) { t.member[s] = d.id[best]; t.size[s] = 1; t.lastuse[s] = now; }
    }
    return best;
  }
}

export const lblc: SchedulerFactory = () => new LocalityLeastConn();
