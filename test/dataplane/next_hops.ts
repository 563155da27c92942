// The XDP hand-off's learnt next hops (dataplane/next_hops.ts): found while fresh, forgotten
// after HOP_TTL_MS, relearnt in place, and a full probe run overwrites rather than fails.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { HOP_TTL_MS, NextHops } from "../../src/dataplane/next_hops.ts";

const s = suite("next hops");

s("a learnt address gives its socket and MAC until it goes stale", () => {
  const h = new NextHops();
  h.learn(0xc6120202 | 0, 0, 0, 0, 1, 0x0a0b, 0x0c0d0e0f, 1000);
  const slot = h.find(0xc6120202 | 0, 0, 0, 0, 1000 + HOP_TTL_MS - 1);
  assert.ok(slot >= 0);
  assert.equal([h.sock(slot), h.macHi(slot), h.macLo(slot)], [1, 0x0a0b, 0x0c0d0e0f]);
  assert.is(h.find(0xc6120202 | 0, 0, 0, 0, 1000 + HOP_TTL_MS), -1, "stale");
  assert.is(h.find(0xc6120203 | 0, 0, 0, 0, 1000), -1, "never learnt");
});

s("relearning moves the address and refreshes it; many addresses all stay findable or missing, never wrong", () => {
  const h = new NextHops();
  h.learn(0xc6120202 | 0, 0, 0, 0, 0, 1, 2, 0);
  h.learn(0xc6120202 | 0, 0, 0, 0, 2, 3, 4, 4000);
  const slot = h.find(0xc6120202 | 0, 0, 0, 0, 8000);
  assert.equal([h.sock(slot), h.macHi(slot), h.macLo(slot)], [2, 3, 4]);
  for (let a = 0; a < 200_000; a++) h.learn(0xc6130000 + a, 0, 0, 0, a & 3, a & 0xffff, a, 10);
  let found = 0;
  for (let a = 0; a < 200_000; a++) {
    const t = h.find(0xc6130000 + a, 0, 0, 0, 10);
    if (t < 0) continue;
    found++;
    assert.equal([h.sock(t), h.macLo(t)], [a & 3, a]);
  }
  assert.ok(found > 40_000, `found ${found}`);
});

s("IPv6: an address differing in any one word is another next hop", () => {
  const h = new NextHops(1 << 10);
  const a = [0x20010002, 0x00000002, 0, 2];
  h.learn(a[0], a[1], a[2], a[3], 1, 0x0a0b, 0x0c0d0e0f, 0);
  const slot = h.find(a[0], a[1], a[2], a[3], 1);
  assert.equal([h.sock(slot), h.macHi(slot), h.macLo(slot)], [1, 0x0a0b, 0x0c0d0e0f]);
  for (let w = 0; w < 4; w++) {
    const b = [...a];
    b[w] ^= 1;
    assert.is(h.find(b[0], b[1], b[2], b[3], 1), -1, `word ${w}`);
  }
});

s.run();
