// lblc: destination-address cache over the wlc rule, the "locally overloaded" rule,
// lazy expiry and garbage collection, the hard cap, and the LocalityTable (open
// addressing, backward-shift delete) against a Map model.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DestSet, NO_DEST, type Scheduler } from "../../src/sched/scheduler.ts";
import { Pkt } from "../../src/wire/pkt.ts";
import {
  LOC_DEFAULT_EXPIRATION_SEC, LOC_HARD_CAP, LOC_MAX_SIZE, LOC_SLOTS, LOC_SLOT_BITS, LocalityLeastConn, LocalityTable, lblc,
} from "../../src/sched/lblc.ts";
import { ip4, rng } from "../fixtures/builder.ts";
import { dests, setConns, overload } from "../helpers/sched.ts";

const VIP = ip4("198.18.0.1");
/** A packet to destination address `dst` at time `now` (seconds). */
function to(p: Pkt, dst: number, now: number): Pkt {
  p.ipv = 4; p.proto = 6; p.src0 = ip4("198.19.0.1"); p.sport = 40000; p.dport = 80;
  p.dst0 = dst; p.dst1 = 0; p.dst2 = 0; p.dst3 = 0; p.now = now;
  return p;
}
function pick(s: Scheduler, d: DestSet, dst: number, now = 0): number {
  const x = s.schedule(d, to(new Pkt(), dst, now));
  return x < 0 ? x : d.id[x];
}

const s = suite("lblc");
s("first packet to an address: the wlc pick; later ones stick to it while loads change", () => {
  const d = dests([[1, 1], [2, 1], [3, 1]]);
  const s = lblc(0); s.rebuild(d);
  setConns(d.state, 1, 0, 5); // overheads 5, 0, 0 → wlc picks id 2
  assert.is(pick(s, d, VIP), 2);
  setConns(d.state, 2, 1, 100); // id 2 is now the most loaded by wlc, but active 1 ≤ weight 1
  assert.is(pick(s, d, VIP), 2);
  assert.is(pick(s, d, VIP + 1), 3, "another address gets its own wlc pick");
  assert.is(pick(s, d, VIP + 1), 3);
});
s("locally overloaded (active > weight and another has 2*active < weight) → reschedule and replace", () => {
  const d = dests([[1, 4], [2, 4]]);
  const s = lblc(0); s.rebuild(d);
  assert.is(pick(s, d, VIP), 1);
  setConns(d.state, 1, 5, 0); // 5 > 4, but id 2 has 2*0 < 4 → overloaded
  assert.is(pick(s, d, VIP), 2);
  setConns(d.state, 1, 0, 0);
  assert.is(pick(s, d, VIP), 2, "the entry now points at id 2");
});
s("active > weight alone is not enough: no clearly idler server → stay", () => {
  const d = dests([[1, 4], [2, 4]]);
  const s = lblc(0); s.rebuild(d);
  assert.is(pick(s, d, VIP), 1);
  setConns(d.state, 1, 9, 0);
  setConns(d.state, 2, 2, 0); // 2*2 < 4 is false
  assert.is(pick(s, d, VIP), 1);
});
s("the OVERLOAD flag is not checked on a hit, but is for a new pick", () => {
  const d = dests([[1, 1], [2, 1]]);
  const s = lblc(0); s.rebuild(d);
  assert.is(pick(s, d, VIP), 1);
  overload(d, 0);
  assert.is(pick(s, d, VIP), 1);
  assert.is(pick(s, d, VIP + 7), 2);
});
s("cached destination quiesced, down or deleted → reschedule", () => {
  const d = dests([[1, 1], [2, 1]]);
  const s = lblc(0); s.rebuild(d);
  assert.is(pick(s, d, VIP), 1);
  d.weight[0] = 0; s.rebuild(d);
  assert.is(pick(s, d, VIP), 2, "weight 0");
  const d2 = dests([[1, 1], [2, 1]]); s.rebuild(d2);
  d2.flags[1] = 0;
  assert.is(pick(s, d2, VIP), 1, "down");
  const d3 = dests([[2, 1], [3, 1]]); s.rebuild(d3); // id 1 deleted
  assert.is(pick(s, d3, VIP), 2, "deleted");
});
s("an id deleted and later reused by another destination does not inherit the entry", () => {
  const d = dests([[1, 1], [2, 1]]);
  const s = lblc(0); s.rebuild(d);
  setConns(d.state, 1, 0, 0); setConns(d.state, 2, 0, 9);
  assert.is(pick(s, d, VIP), 1);
  s.rebuild(dests([[2, 1]], d.state));
  const d2 = dests([[1, 1], [2, 1]], d.state); // id 1 reused
  s.rebuild(d2);
  setConns(d.state, 1, 0, 50); // a wlc pick now prefers id 2
  assert.is(pick(s, d2, VIP), 2);
});
s("no usable destination → NO_DEST", () => {
  const d = dests([[1, 0], [2, 1]]);
  overload(d, 1);
  const s = lblc(0); s.rebuild(d);
  assert.is(pick(s, d, VIP), NO_DEST);
  s.rebuild(dests([]));
  assert.is(pick(s, dests([]), VIP), NO_DEST);
});
s("IPv6 destinations are keyed by all four words", () => {
  const d = dests([[1, 1], [2, 1]]);
  const s = lblc(0); s.rebuild(d);
  const p = to(new Pkt(), 0x20010002, 0); p.ipv = 6; p.dst3 = 1;
  assert.is(d.id[s.schedule(d, p)], 1);
  setConns(d.state, 1, 0, 3);
  p.dst2 = 1; p.dst3 = 0; // same XOR fold, different address
  assert.is(d.id[s.schedule(d, p)], 2);
  p.dst2 = 0; p.dst3 = 1;
  assert.is(d.id[s.schedule(d, p)], 1);
});

const e = suite("lblc expiry");
e("an entry idle for lblc_expiration (24 h) is dropped: the next packet is a fresh wlc pick", () => {
  const d = dests([[1, 1], [2, 1]]);
  const s = new LocalityLeastConn(); s.rebuild(d);
  assert.is(s.table.expirationSec, LOC_DEFAULT_EXPIRATION_SEC);
  assert.is(pick(s, d, VIP, 1000), 1);
  setConns(d.state, 1, 0, 9);
  assert.is(pick(s, d, VIP, 1000 + 86399), 1, "still cached one second before");
  assert.is(pick(s, d, VIP, 1000 + 86399 + 86400), 2, "idle a full day since the last use");
});
e("the per-call sweep drops expired entries without lookups", () => {
  const d = dests([[1, 1]]);
  const s = new LocalityLeastConn(); s.rebuild(d);
  s.table.expirationSec = 100;
  for (let k = 0; k < 500; k++) pick(s, d, VIP + 10 + k, 0);
  assert.is(s.table.count, 500);
  for (let k = 0; k < LOC_SLOTS / 2; k++) pick(s, d, VIP, 100);
  assert.is(s.table.count, 1, "only the address still in use");
});
e("above 16 K entries, the 6-minute rule drops min((n − 16K)·4/3, 8K) idle entries per minute", () => {
  const d = dests([[1, 1]]);
  const s = new LocalityLeastConn(); s.rebuild(d);
  const n = LOC_MAX_SIZE + 616;
  for (let k = 0; k < n; k++) pick(s, d, VIP + 10 + k, 0);
  assert.is(s.table.count, n);
  for (let k = 0; k < LOC_SLOTS / 2; k++) pick(s, d, VIP + 10, 359);
  assert.is(s.table.count, n, "nothing idle 6 minutes yet");
  for (let k = 0; k < LOC_SLOTS / 2; k++) pick(s, d, VIP + 10, 420);
  assert.is(s.table.count, n - Math.trunc((616 * 4) / 3), "one period's goal");
  for (let k = 0; k < LOC_SLOTS / 2; k++) pick(s, d, VIP + 10, 480);
  assert.is(s.table.count, n - 821, "below 16 K: no more");
});
e("at the hard cap a new address is served but not cached", () => {
  const d = dests([[1, 1], [2, 1]]);
  const s = new LocalityLeastConn(); s.rebuild(d);
  for (let k = 0; k < LOC_HARD_CAP; k++) pick(s, d, VIP + 10 + k, 0);
  assert.is(s.table.count, LOC_HARD_CAP);
  assert.is(pick(s, d, VIP + 10 + LOC_HARD_CAP, 0), 1);
  assert.is(s.table.count, LOC_HARD_CAP);
  assert.is(s.table.find(VIP + 10 + LOC_HARD_CAP, 0, 0, 0), -1);
});

const m = suite("LocalityTable vs a Map model");
m("200 000 random insert/remove/find on clustered keys, with wrap-around (seed 3)", () => {
  const t = new LocalityTable(2);
  const home = (f: number) => Math.imul(f, 0x61c88647) >>> (32 - LOC_SLOT_BITS);
  // Folds whose home slot is at the very end, so probe runs wrap to slot 0.
  const folds: number[] = [];
  for (let f = 1; folds.length < 3; f++) if (home(f) >= LOC_SLOTS - 3) folds.push(f);
  folds.push(0, 1, 2, 3, 4);
  const r = rng(3);
  const keys = Array.from({ length: 3000 }, (_, k) => {
    const f = folds[k % folds.length], a1 = (r() * 2 ** 32) | 0, a2 = k;
    return [f ^ a1 ^ a2, a1, a2, 0];
  });
  const model = new Map<number, number>(); // key index → stored member value
  for (let op = 0; op < 200_000; op++) {
    const k = Math.floor(r() * keys.length);
    const [a0, a1, a2, a3] = keys[k];
    const s = t.find(a0, a1, a2, a3);
    assert.is(s >= 0, model.has(k), `op ${op}: find`);
    if (s >= 0) {
      assert.is(t.member[s * 2], model.get(k));
      if (r() < 0.5) { t.remove(s); model.delete(k); }
    } else if (r() < 0.6) {
      const n = t.insert(a0, a1, a2, a3, op);
      t.addMember(n, op, op);
      model.set(k, op);
    }
    assert.is(t.count, model.size);
  }
  for (const [k, v] of model) { const s = t.find(keys[k][0], keys[k][1], keys[k][2], keys[k][3]); assert.ok(s >= 0 && t.member[s * 2] === v); }
});

s.run();
e.run();
m.run();
