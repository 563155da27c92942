// twos: two weighted random draws in [0, total], the less loaded (per weight) of the two.
// Draws are injected (a fixed list, or the seeded rng) so every sequence is exact.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { NO_DEST } from "../../src/sched/scheduler.ts";
import { Pkt } from "../../src/wire/pkt.ts";
import { PowerOfTwo, twos } from "../../src/sched/twos.ts";
import { rng } from "../fixtures/builder.ts";
import { dests, setConns, overload, seq } from "../helpers/sched.ts";

/** A random source replaying `xs` in a loop. */
function replay(xs: number[]): () => number {
  let k = 0;
  return () => xs[k++ % xs.length];
}

const s = suite("twos");
s("draws walk the list: with total 1+2+3 (+1 → 7 values) r = 0,1 → A; 2,3 → B; 4,5,6 → C", () => {
  const d = dests([[1, 1], [2, 2], [3, 3]]);
  // Both draws equal, so the choice is that draw's destination.
  const picks: number[] = [];
  for (let r = 0; r < 7; r++) {
    const x = (r + 0.5) / 7;
    picks.push(...seq(new PowerOfTwo(replay([x, x])), d, 1));
  }
  assert.equal(picks, [1, 1, 2, 2, 3, 3, 3]);
});
s("choice 2 wins only when w2 * overhead1 > w1 * overhead2", () => {
  const d = dests([[1, 1], [2, 2], [3, 3]]);
  const draws = replay([0, 6.5 / 7]); // choice 1 = A, choice 2 = C
  setConns(d.state, 1, 1, 0); // A: 256
  setConns(d.state, 3, 2, 0); // C: 512 → 3*256 > 1*512 → C
  assert.equal(seq(new PowerOfTwo(draws), d, 1), [3]);
  setConns(d.state, 3, 3, 0); // C: 768 → 768 > 768 is false → A (ties keep choice 1)
  assert.equal(seq(new PowerOfTwo(draws), d, 1), [1]);
  setConns(d.state, 3, 4, 0);
  assert.equal(seq(new PowerOfTwo(draws), d, 1), [1]);
});
s("weight 0, OVERLOAD and unavailable are never drawn", () => {
  const d = dests([[1, 0], [2, 5], [3, 5], [4, 2]]);
  overload(d, 1);
  d.flags[2] = 0;
  const s = new PowerOfTwo(rng(3));
  assert.equal(new Set(seq(s, d, 2000)), new Set([4]));
  overload(d, 3);
  assert.equal(seq(s, d, 1), [NO_DEST]);
  assert.is(twos(0).schedule(dests([]), new Pkt()), NO_DEST);
});
s("idle service: shares follow the inclusive draw, 2/7, 2/7, 3/7 for weights 1:2:3 (seed 5)", () => {
  const d = dests([[1, 1], [2, 2], [3, 3]]);
  const n = 140_000;
  const c = new Map<number, number>();
  for (const id of seq(new PowerOfTwo(rng(5)), d, n)) c.set(id, (c.get(id) ?? 0) + 1);
  assert.ok(Math.abs(c.get(1)! / n - 2 / 7) < 0.01, `A ${c.get(1)! / n}`);
  assert.ok(Math.abs(c.get(2)! / n - 2 / 7) < 0.01, `B ${c.get(2)! / n}`);
  assert.ok(Math.abs(c.get(3)! / n - 3 / 7) < 0.01, `C ${c.get(3)! / n}`);
});
s("with live counts the least loaded per weight is favoured (seed 9)", () => {
  // 4 equal destinations; the one with the most connections gets the fewest new ones.
  const d = dests([[1, 1], [2, 1], [3, 1], [4, 1]]);
  setConns(d.state, 1, 10, 0); setConns(d.state, 2, 20, 0); setConns(d.state, 3, 30, 0); setConns(d.state, 4, 40, 0);
  const c = [0, 0, 0, 0, 0];
  for (const id of seq(new PowerOfTwo(rng(9)), d, 40_000)) c[id]++;
  assert.ok(c[1] > c[2] && c[2] > c[3] && c[3] > c[4], c.join(","));
});
s.run();
