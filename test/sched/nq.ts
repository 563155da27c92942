// nq: an idle destination is taken at once; otherwise the sed rule. Exact sequences,
// ties, weight 0, OVERLOAD, and a differential test against a slow reference.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DEST_F_OVERLOAD, DS_ACTIVE, DS_FLAGS, DS_STRIDE } from "../../src/conntrack/dest_state.ts";
import { nq } from "../../src/sched/nq.ts";
import { DEST_AVAILABLE, DestSet, NO_DEST, type Scheduler } from "../../src/sched/scheduler.ts";
import { Pkt } from "../../src/wire/pkt.ts";
import { rng } from "../fixtures/builder.ts";
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

function usableRef(d: DestSet, i: number): boolean {
  return d.weight[i] > 0 && (d.flags[i] & DEST_AVAILABLE) !== 0 && (d.state[d.id[i] * DS_STRIDE + DS_FLAGS] & DEST_F_OVERLOAD) === 0;
}
/** Slow reference: the first usable idle destination, else argmin (active+1)/weight (exact, first of equals). */
function slowNq(d: DestSet): number {
  for (let i = 0; i < d.count; i++) if (usableRef(d, i) && d.active(i) === 0) return i;
  let best = NO_DEST;
  let bn = 0n, bd = 1n;
  for (let i = 0; i < d.count; i++) {
    if (!usableRef(d, i)) continue;
    const n = BigInt(d.active(i) + 1), w = BigInt(d.weight[i]);
    if (best < 0 || n * bd < bn * w) { best = i; bn = n; bd = w; }
  }
  return best;
}

const s = suite("nq");
s("[A(1),B(3)] from idle → A (idle), B (idle), then sed: B B B B A", () => {
  const d = dests([[1, 1], [2, 3]]);
  assert.equal(run(nq(0), d, 7), [1, 2, 2, 2, 2, 2, 1]);
});
s("an idle destination wins over a far better weighted one", () => {
  const d = dests([[1, 100], [2, 1]]);
  setConns(d.state, 1, 1, 0);
  assert.equal(seq(nq(0), d, 1), [2]);
});
s("inactive connections do not make a destination busy", () => {
  const d = dests([[1, 1], [2, 1]]);
  setConns(d.state, 1, 1, 0);
  setConns(d.state, 2, 0, 500);
  assert.equal(seq(nq(0), d, 1), [2]);
});
s("ties keep the earlier destination", () => {
  const d = dests([[1, 1], [2, 2]]);
  setConns(d.state, 1, 1, 0); // 2/1
  setConns(d.state, 2, 3, 0); // 4/2
  assert.equal(seq(nq(0), d, 1), [1]);
});
s("weight 0, OVERLOAD and unavailable are never chosen, even idle", () => {
  const d = dests([[1, 0], [2, 4], [3, 4], [4, 1]]);
  overload(d, 1);
  d.flags[2] = 0;
  setConns(d.state, 4, 9, 0);
  assert.equal(seq(nq(0), d, 2), [4, 4]);
  overload(d, 3);
  assert.equal(seq(nq(0), d, 1), [NO_DEST]);
});

const diff = suite("nq vs the slow reference");
diff("20 000 random services, seed 11", () => {
  const r = rng(11);
  const p = new Pkt();
  const s = nq(0);
  for (let k = 0; k < 20_000; k++) {
    const n = 1 + Math.floor(r() * 40);
    const list: [number, number][] = [];
    for (let i = 0; i < n; i++) list.push([i + 1, r() < 0.25 ? 0 : 1 + Math.floor(r() * 100)]);
    const d = dests(list);
    for (let i = 0; i < n; i++) {
      setConns(d.state, i + 1, r() < 0.1 ? 0 : Math.floor(r() * (r() < 0.1 ? 1e6 : 30)), Math.floor(r() * 50));
      if (r() < 0.1) overload(d, i);
      if (r() < 0.05) d.flags[i] = 0;
    }
    s.rebuild(d);
    assert.is(s.schedule(d, p), slowNq(d), `case ${k}`);
  }
});

s.run();
diff.run();
