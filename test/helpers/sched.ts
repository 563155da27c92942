// Shared helpers of the scheduler tests: DestSets built from [id, weight] pairs, the
// shared per-destination state poked directly, and the sequence of ids a scheduler picks.
import { DEST_F_OVERLOAD, DS_ACTIVE, DS_FLAGS, DS_INACTIVE, DS_STRIDE } from "../../src/conntrack/dest_state.ts";
import { DEST_AVAILABLE, DestSet, type Scheduler } from "../../src/sched/scheduler.ts";
import { Pkt } from "../../src/wire/pkt.ts";

/** A DestSet in list order (index 0 = newest) from [id, weight] pairs; all available. */
export function dests(list: [number, number][], state: Int32Array = new Int32Array(4096 * DS_STRIDE)): DestSet {
  const d = new DestSet(list.length, state);
  list.forEach(([id, w], i) => { d.id[i] = id; d.weight[i] = w; d.flags[i] = DEST_AVAILABLE; });
  return d;
}

/** Sets ActiveConn/InActConn of destination id. */
export function setConns(state: Int32Array, id: number, active: number, inactive: number): void {
  state[id * DS_STRIDE + DS_ACTIVE] = active;
  state[id * DS_STRIDE + DS_INACTIVE] = inactive;
}

/** Sets (or clears) the OVERLOAD flag of the destination at index i. */
export function overload(d: DestSet, i: number, on = true): void {
  const k = d.id[i] * DS_STRIDE + DS_FLAGS;
  d.state[k] = on ? d.state[k] | DEST_F_OVERLOAD : d.state[k] & ~DEST_F_OVERLOAD;
}

/** The ids chosen by n calls (NO_DEST stays -1). */
export function seq(s: Scheduler, d: DestSet, n: number, p = new Pkt()): number[] {
  const out: number[] = [];
  for (let k = 0; k < n; k++) { const x = s.schedule(d, p); out.push(x < 0 ? x : d.id[x]); }
  return out;
}
