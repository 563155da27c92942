// fo: the highest weight wins (strictly greater, so ties keep the earlier); OVERLOAD,
// weight 0 and unavailable never; connection counts are ignored.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DEST_F_OVERLOAD, DS_ACTIVE, DS_FLAGS, DS_INACTIVE, DS_STRIDE } from "../../src/conntrack/dest_state.ts";
import { DEST_AVAILABLE, DestSet, NO_DEST, type Scheduler } from "../../src/sched/scheduler.ts";
import { Pkt } from "../../src/wire/pkt.ts";
import { fo } from "../../src/sched/fo.ts";

/** A DestSet in list order (index 0 = newest) from [id, weight] pairs; all available. */
function dests(list: [number, number][], state: Int32Array = new Int32Array(4096 * DS_STRIDE)): DestSet {
  const d = new DestSet(list.length, state);
  list.forEach(([id, w], i) => { d.id[i] = id; d.weight[i] = w; d.flags[i] = DEST_AVAILABLE; });
  return d;
}
function setConns(state: Int32Array, id: number, active: number, inactive: number): void {
  state[id * DS_STRIDE + DS_ACTIVE] = active;
  state[id * DS_STRIDE + DS_INACTIVE] = inactive;
}
function overload(d: DestSet, i: number, on = true): void {
  const k = d.id[i] * DS_STRIDE + DS_FLAGS;
  d.state[k] = on ? d.state[k] | DEST_F_OVERLOAD : d.state[k] & ~DEST_F_OVERLOAD;
}
/** The ids chosen by n calls (NO_DEST stays -1). */
function seq(s: Scheduler, d: DestSet, n: number, p = new Pkt()): number[] {
  const out: number[] = [];
  for (let k = 0; k < n; k++) { const x = s.schedule(d, p); out.push(x < 0 ? x : d.id[x]); }
  return out;
}

const s = suite("fo");
s("highest weight; ties keep the earlier (newer) destination", () => {
  const d = dests([[1, 2], [2, 5], [3, 5], [4, 0]]);
  assert.equal(seq(fo(0), d, 3), [2, 2, 2]);
});
s("connection counts are ignored", () => {
  const d = dests([[1, 2], [2, 5]]);
  setConns(d.state, 2, 100000, 100000);
  assert.equal(seq(fo(0), d, 1), [2]);
});
s("fails over down the weights as destinations overload or go down", () => {
  const d = dests([[1, 2], [2, 5], [3, 5], [4, 0]]);
  overload(d, 1);
  assert.equal(seq(fo(0), d, 1), [3]);
  d.flags[2] = 0;
  assert.equal(seq(fo(0), d, 1), [1]);
  overload(d, 0);
  assert.equal(seq(fo(0), d, 1), [NO_DEST], "only weight 0 left");
  overload(d, 1, false);
  assert.equal(seq(fo(0), d, 1), [2], "back when OVERLOAD clears");
});
s("empty service → NO_DEST", () => {
  assert.is(fo(0).schedule(dests([]), new Pkt()), NO_DEST);
});
s.run();
