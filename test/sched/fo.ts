// fo: the highest weight wins (strictly greater, so ties keep the earlier); OVERLOAD,
// weight 0 and unavailable never; connection counts are ignored.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { NO_DEST } from "../../src/sched/scheduler.ts";
import { Pkt } from "../../src/wire/pkt.ts";
import { fo } from "../../src/sched/fo.ts";
import { dests, setConns, overload, seq } from "../helpers/sched.ts";


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
