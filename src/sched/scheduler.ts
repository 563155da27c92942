// The scheduler plug-in contract: IPVS's struct ip_vs_scheduler reduced to what a
// userspace data plane needs. A scheduler is a value made by a factory per service;
// heavy work goes in rebuild() (control side, on any destination change), and
// schedule() is the hot path: integer maths only, no allocation, no throw.
import { DEST_F_OVERLOAD, DS_ACTIVE, DS_FLAGS, DS_INACTIVE, DS_STRIDE } from "../conntrack/dest_state.ts";
import type { Pkt } from "../wire/pkt.ts";

export const NO_DEST = -1;

/** Per-snapshot destination flag bits (DestSet.flags): in service (health checks may clear it). */
export const DEST_AVAILABLE = 1;

/**
 * One service's destinations in IPVS list order (index 0 = newest added), as typed
 * arrays. `state` is the shared per-destination block (conntrack/dest_state.ts) indexed
 * by stable dest id: live connection counts and the OVERLOAD flag.
 */
export class DestSet {
  readonly count: number;
  readonly id: Int32Array;
  readonly weight: Int32Array;
  readonly flags: Uint8Array;
  readonly port: Int32Array;
  readonly fwd: Uint8Array;
  /** Address words, 4 per destination (IPv4 uses word 0). */
  readonly addr: Int32Array;
  constructor(count: number, readonly state: Int32Array) {
    this.count = count;
    this.id = new Int32Array(count);
    this.weight = new Int32Array(count);
    this.flags = new Uint8Array(count);
    this.port = new Int32Array(count);
    this.fwd = new Uint8Array(count);
    this.addr = new Int32Array(count * 4);
  }
  active(i: number): number { return this.state[this.id[i] * DS_STRIDE + DS_ACTIVE]; }
  inactive(i: number): number { return this.state[this.id[i] * DS_STRIDE + DS_INACTIVE]; }
  /** IPVS ip_vs_dest_conn_overhead: active * 256 + inactive (the 256 is IPVS's guess, kept for equal behaviour). */
  overhead(i: number): number { const b = this.id[i] * DS_STRIDE; return (this.state[b + DS_ACTIVE] << 8) + this.state[b + DS_INACTIVE]; }
  /** OVERLOAD set by the thresholds: skipped by every scheduler. */
  overloaded(i: number): boolean { return (this.state[this.id[i] * DS_STRIDE + DS_FLAGS] & DEST_F_OVERLOAD) !== 0; }
  /** Weight > 0 (not quiesced), available and not overloaded: may take new connections. */
  usable(i: number): boolean { return this.weight[i] > 0 && (this.flags[i] & DEST_AVAILABLE) !== 0 && !this.overloaded(i); }
}

export interface Scheduler {
  readonly name: string;
  /**
   * Control side: called with the new destination list after any add/edit/delete or
   * weight/availability change, and once at creation. May allocate.
   */
  rebuild(dests: DestSet): void;
  /** Hot path: the index (into `dests`) for a new connection, or NO_DEST. */
  schedule(dests: DestSet, pkt: Pkt): number;
  /**
   * Control side, before rebuild(): the scheduler serves service `svcId` in snapshot
   * generation `gen`. Schedulers whose position must be one across workers (rr, wrr)
   * take their slot here (sched/shared.ts).
   */
  attach?(svcId: number, gen: number): void;
}

/** `schedFlags` are the -b bits: 1 flag-1, 2 flag-2, 4 flag-3. */
export type SchedulerFactory = (schedFlags: number) => Scheduler;
