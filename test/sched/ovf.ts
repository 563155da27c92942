// ovf: the highest weight among destinations whose ACTIVE count does not exceed their
// weight; traffic overflows down the weights. Exact sequences, ties, weight 0, OVERLOAD.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DS_ACTIVE, DS_STRIDE } from "../../src/conntrack/dest_state.ts";
import { DestSet, NO_DEST, type Scheduler } from "../../src/sched/scheduler.ts";
import { Pkt } from "../../src/wire/pkt.ts";
import { ovf } from "../../src/sched/ovf.ts";
import { dests, setConns, overload, seq } from "../helpers/sched.ts";

function run(s: Scheduler, d: DestSet, n: number): number[] {
  const out: number[] = [];
  const p = new Pkt();
  for (let k = 0; k < n; k++) {
    const x = s.schedule(d, p);
    out.push(x < 0 ? x : d.id[x]);
    if (x >= 0) d.state[d.id[x] * DS_STRIDE + DS_ACTIVE]++;
  }
  return out;
}

const s = suite("ovf");
s("[A(2),B(5),C(3)]: B until active > 5, then C until > 3, then A until > 2, then none", () => {
  const d = dests([[1, 2], [2, 5], [3, 3]]);
  assert.equal(run(ovf(0), d, 14), [2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 1, 1, 1, NO_DEST]);
});
s("a closed connection brings traffic back to the higher weight", () => {
  const d = dests([[1, 2], [2, 5]]);
  setConns(d.state, 2, 6, 0);
  assert.equal(seq(ovf(0), d, 1), [1]);
  setConns(d.state, 2, 5, 0);
  assert.equal(seq(ovf(0), d, 1), [2]);
});
s("inactive connections (and so UDP) are not counted", () => {
  const d = dests([[1, 2], [2, 5]]);
  setConns(d.state, 2, 0, 1000);
  assert.equal(seq(ovf(0), d, 1), [2]);
});
s("ties keep the earlier destination", () => {
  const d = dests([[1, 3], [2, 3]]);
  assert.equal(seq(ovf(0), d, 2), [1, 1]);
});
s("weight 0 (even with 0 active), OVERLOAD and unavailable are never chosen", () => {
  const d = dests([[1, 0], [2, 9], [3, 4], [4, 1]]);
  overload(d, 1);
  d.flags[2] = 0;
  assert.equal(seq(ovf(0), d, 1), [4]);
  setConns(d.state, 4, 2, 0);
  assert.equal(seq(ovf(0), d, 1), [NO_DEST]);
});
s.run();
