// lblcr: destination-address → server SET; set_min on hits, growth when locally
// overloaded, shrinking after lblcr_expiration without change, purges, the set bound.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DestSet, NO_DEST, type Scheduler } from "../../src/sched/scheduler.ts";
import { Pkt } from "../../src/wire/pkt.ts";
import { LBLCR_SET_MAX, LocalityLeastConnReplicated, lblcr } from "../../src/sched/lblcr.ts";
import { ip4 } from "../fixtures/builder.ts";
import { dests, setConns, overload } from "../helpers/sched.ts";

const VIP = ip4("198.18.0.1");
function to(p: Pkt, dst: number, now: number): Pkt {
  p.ipv = 4; p.proto = 6; p.src0 = ip4("198.19.0.1"); p.sport = 40000; p.dport = 80;
  p.dst0 = dst; p.dst1 = 0; p.dst2 = 0; p.dst3 = 0; p.now = now;
  return p;
}
function pick(s: Scheduler, d: DestSet, dst: number, now = 0): number {
  const x = s.schedule(d, to(new Pkt(), dst, now));
  return x < 0 ? x : d.id[x];
}
/** The set of the entry for `dst`, newest member first. */
function members(s: LocalityLeastConnReplicated, dst: number): number[] {
  const t = s.table;
  const slot = t.find(dst, 0, 0, 0);
  if (slot < 0) return [];
  return Array.from(t.member.subarray(slot * t.width, slot * t.width + t.size[slot]));
}

const s = suite("lblcr");
s("miss: the wlc pick, stored as a one-member set; hits reuse it", () => {
  const d = dests([[1, 1], [2, 1], [3, 1]]);
  const s = new LocalityLeastConnReplicated(); s.rebuild(d);
  setConns(d.state, 1, 0, 5);
  assert.is(pick(s, d, VIP), 2);
  assert.equal(members(s, VIP), [2]);
  setConns(d.state, 2, 1, 50);
  assert.is(pick(s, d, VIP), 2);
});
s("locally overloaded member → wlc pick over the service, added to the set (newest first)", () => {
  const d = dests([[1, 2], [2, 2], [3, 2]]);
  const s = new LocalityLeastConnReplicated(); s.rebuild(d);
  assert.is(pick(s, d, VIP, 10), 1);
  setConns(d.state, 1, 3, 0); // 3 > 2, and id 2 has 0*2 < 2
  assert.is(pick(s, d, VIP, 20), 2);
  assert.equal(members(s, VIP), [2, 1]);
  assert.is(s.table.lastmod[s.table.find(VIP, 0, 0, 0)], 20);
  // Now hits pick the least loaded member of {2, 1}.
  setConns(d.state, 1, 0, 0); setConns(d.state, 2, 1, 0);
  assert.is(pick(s, d, VIP, 30), 1);
  setConns(d.state, 1, 2, 0);
  assert.is(pick(s, d, VIP, 40), 2, "id 1 overhead 512 vs id 2 256");
});
s("set_min ties keep the earlier (newer) member; OVERLOAD members are skipped", () => {
  const d = dests([[1, 2], [2, 2], [3, 2]]);
  const s = new LocalityLeastConnReplicated(); s.rebuild(d);
  pick(s, d, VIP);
  setConns(d.state, 1, 3, 0);
  pick(s, d, VIP); // set [2, 1]
  setConns(d.state, 1, 0, 0); setConns(d.state, 2, 0, 0);
  assert.is(pick(s, d, VIP), 2, "tie → the newer member");
  overload(d, 1);
  assert.is(pick(s, d, VIP), 1);
  overload(d, 0);
  assert.is(pick(s, d, VIP), 3, "no member usable → wlc over the service");
  assert.equal(members(s, VIP), [3, 2, 1]);
});
s("a set unchanged for longer than lblcr_expiration loses its most loaded member", () => {
  const d = dests([[1, 2], [2, 2], [3, 2]]);
  const s = new LocalityLeastConnReplicated(); s.rebuild(d);
  s.table.expirationSec = 1000;
  pick(s, d, VIP, 0);
  setConns(d.state, 1, 3, 0);
  pick(s, d, VIP, 0); // set [2, 1], lastmod 0
  setConns(d.state, 1, 1, 0); setConns(d.state, 2, 0, 9);
  // Hits refresh lastuse (the same sysctl also expires idle entries) but not lastmod.
  assert.is(pick(s, d, VIP, 500), 2);
  assert.is(pick(s, d, VIP, 1000), 2, "not yet: needs now > lastmod + expiration");
  assert.equal(members(s, VIP), [2, 1]);
  // id 1: 256/2, id 2: 9/2 → id 1 is the most loaded and goes; the pick is made before.
  assert.is(pick(s, d, VIP, 1001), 2);
  assert.equal(members(s, VIP), [2]);
  assert.is(s.table.lastmod[s.table.find(VIP, 0, 0, 0)], 1001);
  assert.is(pick(s, d, VIP, 1900), 2);
  assert.is(pick(s, d, VIP, 2800), 2, "a one-member set is never shrunk");
  assert.equal(members(s, VIP), [2]);
});
s("deleted destinations leave the sets at rebuild; quiesced ones stay but are not picked", () => {
  const d = dests([[1, 2], [2, 2], [3, 2]]);
  const s = new LocalityLeastConnReplicated(); s.rebuild(d);
  pick(s, d, VIP);
  setConns(d.state, 1, 3, 0);
  pick(s, d, VIP); // [2, 1]
  setConns(d.state, 1, 0, 0);
  d.weight[1] = 0; s.rebuild(d);
  assert.is(pick(s, d, VIP), 1);
  assert.equal(members(s, VIP), [2, 1]);
  const d2 = dests([[2, 2], [3, 2]], d.state); s.rebuild(d2);
  assert.equal(members(s, VIP), [2]);
});
s("the set is bounded: the 17th member drops the oldest", () => {
  const list: [number, number][] = Array.from({ length: 20 }, (_, i) => [i + 1, 1]);
  const d = dests(list);
  const s = new LocalityLeastConnReplicated(); s.rebuild(d);
  // Each round: all current members get 2 active (> weight 1) and the rest stay idle,
  // so the hit is locally overloaded and the next idle destination joins.
  for (let k = 0; k < 18; k++) {
    const id = pick(s, d, VIP);
    assert.is(id, k + 1);
    setConns(d.state, id, 2, 0);
  }
  const m = members(s, VIP);
  assert.is(m.length, LBLCR_SET_MAX);
  assert.equal(m, Array.from({ length: 16 }, (_, i) => 18 - i));
});
s("entries idle for lblcr_expiration are dropped like lblc's", () => {
  const d = dests([[1, 1], [2, 1]]);
  const s = lblcr(0); s.rebuild(d);
  assert.is(pick(s, d, VIP, 0), 1);
  setConns(d.state, 1, 0, 9);
  assert.is(pick(s, d, VIP, 86399), 1);
  assert.is(pick(s, d, VIP, 86399 + 86400), 2);
});
s("no usable destination → NO_DEST (miss and hit)", () => {
  const d = dests([[1, 1]]);
  const s = lblcr(0); s.rebuild(d);
  assert.is(pick(s, d, VIP), 1);
  d.weight[0] = 0; s.rebuild(d);
  assert.is(pick(s, d, VIP), NO_DEST);
  assert.is(pick(s, d, VIP + 1), NO_DEST);
});
s.run();
