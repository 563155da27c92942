// The scheduler plug-in contract: IPVS's struct ip_vs_scheduler reduced to what a
// userspace data plane needs. A scheduler is a value made by a factory per service;
// heavy work goes in rebuild() (control side, on any destination change), and
// schedule() is the hot path: integer maths only, no allocation, no throw.
import type { Pkt } from "../wire/pkt.ts";

export const NO_DEST = -1;

/** Destination flag bits as the data plane sees them. */
export const DEST_AVAILABLE = 1;
/** Set by the -x/-y thresholds: skipped by every scheduler. */
export const DEST_OVERLOAD = 2;

/**
 * One service's destinations in IPVS list order (index 0 = newest added), as typed
 * arrays. `conns` is the shared ActiveConn/InActConn block indexed by stable dest id:
 * [id*2] active, [id*2+1] inactive.
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
  constructor(count: number, readonly conns: Int32Array) {
    this.count = count;
    this.id = new Int32Array(count);
    this.weight = new Int32Array(count);
    this.flags = new Uint8Array(count);
    this.port = new Int32Array(count);
    this.fwd = new Uint8Array(count);
    this.addr = new Int32Array(count * 4);
  }
  active(i: number): number { return this.conns[this.id[i] * 2]; }
  inactive(i: number): number { return this.conns[this.id[i] * 2 + 1]; }
  /** IPVS ip_vs_dest_conn_overhead: active * 256 + inactive (the 256 is IPVS's guess, kept for equal behaviour). */
  overhead(i: number): number { return (this.conns[this.id[i] * 2] << 8) + this.conns[this.id[i] * 2 + 1]; }
  /** Not overloaded and weight > 0: may take new connections. */
  usable(i: number): boolean { return (this.flags[i] & DEST_OVERLOAD) === 0 && this.weight[i] > 0; }
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
}

/** `schedFlags` are the -b bits: 1 flag-1, 2 flag-2, 4 flag-3. */
export type SchedulerFactory = (schedFlags: number) => Scheduler;
