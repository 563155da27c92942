import { suite } from "uvu";
import * as assert from "uvu/assert";
import { rr } from "../../src/sched/rr.ts";
import { wrr } from "../../src/sched/wrr.ts";
import { wlc } from "../../src/sched/wlc.ts";
import { lc } from "../../src/sched/lc.ts";
import { DEST_F_OVERLOAD, DS_ACTIVE, DS_FLAGS, DS_INACTIVE, DS_STRIDE } from "../../src/conntrack/dest_state.ts";
import { DestSet, NO_DEST, type Scheduler } from "../../src/sched/scheduler.ts";
import { Pkt } from "../../src/wire/pkt.ts";

/** A DestSet in list order (newest first) from [id, weight] pairs. */
function dests(list: [number, number][], conns = new Int32Array(64)): DestSet {
  // conns is the shared dest-state block; see setConns/overload below.
  const d = new DestSet(list.length, conns);
  list.forEach(([id, w], i) => { d.id[i] = id; d.weight[i] = w; d.flags[i] = 1; });
  return d;
}
/** Sets ActiveConn/InActConn of destination id. */
function setConns(state: Int32Array, id: number, active: number, inactive: number): void {
  state[id * DS_STRIDE + DS_ACTIVE] = active;
  state[id * DS_STRIDE + DS_INACTIVE] = inactive;
}
function overload(d: DestSet, i: number): void {
  d.state[d.id[i] * DS_STRIDE + DS_FLAGS] |= DEST_F_OVERLOAD;
}
function seq(s: Scheduler, d: DestSet, n: number): number[] {
  const p = new Pkt();
  const out: number[] = [];
  for (let i = 0; i < n; i++) { const x = s.schedule(d, p); out.push(x < 0 ? x : d.id[x]); }
  return out;
}

const r = suite("rr");
r("cycles in list order and skips weight 0 (quiesced) and overloaded", () => {
  const s = rr(0); const d = dests([[1, 1], [2, 5], [3, 0], [4, 1]]); s.rebuild(d);
  assert.equal(seq(s, d, 6), [1, 2, 4, 1, 2, 4]);
  overload(d, 1);
  assert.equal(seq(s, d, 3), [1, 4, 1]);
});
r("no usable destination → NO_DEST", () => {
  const s = rr(0); const d = dests([[1, 0]]); s.rebuild(d);
  assert.is(s.schedule(d, new Pkt()), NO_DEST);
});
r("a new destination (added at the head) does not reset the rotation", () => {
  const s = rr(0); let d = dests([[1, 1], [2, 1]]); s.rebuild(d);
  assert.equal(seq(s, d, 1), [1]);
  d = dests([[3, 1], [1, 1], [2, 1]]); s.rebuild(d);
  assert.equal(seq(s, d, 4), [2, 3, 1, 2]);
});
r("deleting the cursor's destination continues from its predecessor", () => {
  const s = rr(0); let d = dests([[1, 1], [2, 1], [3, 1]]); s.rebuild(d);
  assert.equal(seq(s, d, 2), [1, 2]);
  d = dests([[1, 1], [3, 1]]); s.rebuild(d);
  assert.equal(seq(s, d, 3), [3, 1, 3]);
});
r.run();

const w = suite("wrr");
w("reference §3.2: [A(4),B(3),C(2)] → A A B A B C A B C", () => {
  const s = wrr(0); const d = dests([[1, 4], [2, 3], [3, 2]]); s.rebuild(d);
  assert.equal(seq(s, d, 18), [1, 1, 2, 1, 2, 3, 1, 2, 3, 1, 1, 2, 1, 2, 3, 1, 2, 3]);
});
w("gcd 2: [A(2),B(4)] → B A B", () => {
  const s = wrr(0); const d = dests([[1, 2], [2, 4]]); s.rebuild(d);
  assert.equal(seq(s, d, 6), [2, 1, 2, 2, 1, 2]);
});
w("all weights 0 or overloaded → NO_DEST", () => {
  const s = wrr(0); const d = dests([[1, 0], [2, 0]]); s.rebuild(d);
  assert.is(s.schedule(d, new Pkt()), NO_DEST);
  const d2 = dests([[1, 3], [2, 1]]); s.rebuild(d2);
  overload(d2, 0); overload(d2, 1);
  assert.is(s.schedule(d2, new Pkt()), NO_DEST);
});
w("weights 1:1 alternate; a weight-0 destination is never chosen", () => {
  const s = wrr(0); const d = dests([[1, 1], [2, 0], [3, 1]]); s.rebuild(d);
  assert.equal(seq(s, d, 4), [1, 3, 1, 3]);
});
w.run();

const l = suite("wlc and lc");
l("wlc: least overhead/weight, cross-multiplied; ties keep the newer", () => {
  const conns = new Int32Array(64);
  const d = dests([[1, 1], [2, 3]], conns);
  const s = wlc(0);
  assert.equal(seq(s, d, 1), [1], "tie at 0 keeps the first");
  setConns(conns, 1, 1, 0); // dest 1: 1 active → overhead 256
  assert.equal(seq(s, d, 1), [2]);
  setConns(conns, 2, 2, 0); // dest 2: 512 vs 256: 256*3 > 512*1 → dest 2
  assert.equal(seq(s, d, 1), [2]);
  setConns(conns, 2, 4, 0); // 1024 vs 256: 256*3 < 1024 → dest 1
  assert.equal(seq(s, d, 1), [1]);
});
l("lc ignores weights except 0", () => {
  const conns = new Int32Array(64);
  const d = dests([[1, 1], [2, 100], [3, 0]], conns);
  setConns(conns, 1, 1, 0); setConns(conns, 2, 0, 3); // overheads 256 and 3
  assert.equal(seq(lc(0), d, 1), [2]);
});
l.run();
