import { suite } from "uvu";
import * as assert from "uvu/assert";
import { RateEstimator } from "../../src/stats/rates.ts";
import type { Stats } from "../../src/control/protocol.ts";

const st = (conns: number, inpkts: number, outpkts: number, inbytes: number, outbytes: number): Stats => ({ conns, inpkts, outpkts, inbytes, outbytes });

const r = suite("IPVS rate estimator");
r("a new object reports 0 until its second sample", () => {
  const e = new RateEstimator();
  e.sample([1], () => st(100, 100, 100, 100, 100));
  assert.equal(e.rate(1), st(0, 0, 0, 0, 0));
});
r("a steady 100 conn/s converges to 100 with the 1/4 EWMA, in IPVS's fixed point", () => {
  const e = new RateEstimator();
  let t = st(0, 0, 0, 0, 0);
  e.sample([1], () => t);
  const seen: number[] = [];
  for (let i = 1; i <= 80; i++) {
    t = st(200 * i, 2000 * i, 1000 * i, 3_000_000 * i, 1_000_000 * i); // per 2 s: 100 cps, 1000 pps, 500 pps, 1.5 MB/s, 0.5 MB/s
    e.sample([1], () => t);
    seen.push(e.rate(1).conns);
  }
  // First sample: 200<<9 = 102400 scaled; /4 = 25600 → (25600+511)>>10 = 25.
  assert.is(seen[0], 25);
  assert.is(seen[1], 44); // 25600 + (102400-25600)/4 = 44800 → 44
  assert.equal(e.rate(1), st(100, 1000, 500, 1_500_000, 500_000));
});
r("reset restarts from zero", () => {
  const e = new RateEstimator();
  let t = st(0, 0, 0, 0, 0);
  e.sample([1], () => t);
  t = st(1000, 0, 0, 0, 0);
  e.sample([1], () => t);
  assert.ok(e.rate(1).conns > 0);
  e.reset(1, t);
  assert.is(e.rate(1).conns, 0);
});
r("objects that disappear are forgotten", () => {
  const e = new RateEstimator();
  e.sample([1, 2], () => st(0, 0, 0, 0, 0));
  e.sample([2], () => st(10, 0, 0, 0, 0));
  assert.is(e.rate(1).conns, 0);
  assert.ok(e.rate(2).conns > 0);
});
r("keys far apart, and objects that come back after being forgotten start afresh", () => {
  const e = new RateEstimator();
  e.sample([5, 200_000], () => st(0, 0, 0, 0, 0));
  e.sample([5, 200_000], () => st(1000, 0, 0, 0, 0));
  assert.ok(e.rate(200_000).conns > 0);
  e.sample([5], () => st(1000, 0, 0, 0, 0));
  assert.is(e.rate(200_000).conns, 0);
  e.sample([5, 200_000], () => st(5000, 0, 0, 0, 0));
  assert.is(e.rate(200_000).conns, 0, "a new object: its totals now, zero rates");
  assert.is(e.rate(7).conns, 0);
});
r.run();
