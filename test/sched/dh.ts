// dh: 256 buckets dealt i mod n over the list, keyed by hash_32 of the packet's
// destination address. Bucket formula, table, no fallback, IPv6 folding, stability.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DestSet, NO_DEST, type Scheduler } from "../../src/sched/scheduler.ts";
import { Pkt } from "../../src/wire/pkt.ts";
import { DH_TAB_SIZE, DestinationHash, dh, dhBucket, dhBucketLegacy } from "../../src/sched/dh.ts";
import { ip4, rng } from "../fixtures/builder.ts";
import { dests, overload } from "../helpers/sched.ts";

/** hash_32(x, 8) of include/linux/hash.h, in BigInt. */
function hash32Ref(x: number, bits: number): number {
  return Number(((BigInt(x >>> 0) * 0x61c88647n) & 0xffffffffn) >> BigInt(32 - bits));
}
function toDst(p: Pkt, a: number): Pkt {
  p.ipv = 4; p.dst0 = a; p.dst1 = 0; p.dst2 = 0; p.dst3 = 0;
  return p;
}
/** The chosen id (or NO_DEST) for each address. */
function map(s: Scheduler, d: DestSet, addrs: number[]): number[] {
  const p = new Pkt();
  return addrs.map((a) => { const x = s.schedule(d, toDst(p, a)); return x < 0 ? x : d.id[x]; });
}
function randomAddrs(seed: number, n: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => (ip4("198.18.0.0") + Math.floor(r() * 131072)) | 0);
}

const s = suite("dh");
s("bucket = hash_32(ntohl(addr), 8): the top byte of addr * 0x61C88647", () => {
  assert.is(dhBucket(1), 0x61);
  assert.is(dhBucket(0x01000000), 0x47);
  const r = rng(1);
  for (let k = 0; k < 10_000; k++) {
    const x = (r() * 2 ** 32) | 0;
    assert.is(dhBucket(x), hash32Ref(x, 8));
  }
  // Pre-hash_32 kernels: the low byte of addr * 2654435761.
  assert.is(dhBucketLegacy(ip4("198.18.0.1")), Number((BigInt(ip4("198.18.0.1") >>> 0) * 2654435761n) & 255n));
});
s("table: bucket i → list position i mod n, weights ignored", () => {
  const s = new DestinationHash();
  s.rebuild(dests([[7, 1], [8, 100], [9, 0]]));
  assert.equal(Array.from(s.buckets.subarray(0, 7)), [0, 1, 2, 0, 1, 2, 0]);
  assert.is(s.buckets[DH_TAB_SIZE - 1], 255 % 3);
  s.rebuild(dests([]));
  assert.ok(s.buckets.every((b) => b === -1));
});
s("a destination address picks list[hash mod n]", () => {
  const d = dests([[1, 1], [2, 1], [3, 1]]);
  const s = dh(0); s.rebuild(d);
  const addrs = randomAddrs(2, 2000);
  assert.equal(map(s, d, addrs), addrs.map((a) => d.id[hash32Ref(a, 8) % 3]));
});
s("source address and ports do not matter", () => {
  const d = dests([[1, 1], [2, 1], [3, 1]]);
  const s = dh(0); s.rebuild(d);
  const p = toDst(new Pkt(), ip4("198.18.5.5"));
  const want = s.schedule(d, p);
  for (let k = 0; k < 50; k++) { p.src0 = ip4("198.19.0.1") + k; p.sport = 1000 + k; assert.is(s.schedule(d, p), want); }
});
s("IPv6: the four words are folded by XOR", () => {
  const d = dests([[1, 1], [2, 1], [3, 1], [4, 1], [5, 1]]);
  const s = dh(0); s.rebuild(d);
  const p = new Pkt(); p.ipv = 6;
  p.dst0 = 0x20010002; p.dst1 = 0; p.dst2 = 0x1234; p.dst3 = 0x77;
  assert.is(s.schedule(d, p), hash32Ref(0x20010002 ^ 0x1234 ^ 0x77, 8) % 5);
});
s("weight 0, OVERLOAD or down on the hashed destination → NO_DEST (no fallback)", () => {
  const d = dests([[1, 1], [2, 1]]);
  const s = dh(0); s.rebuild(d);
  const a = randomAddrs(3, 1).find(() => true)!;
  const i = hash32Ref(a, 8) % 2;
  const p = toDst(new Pkt(), a);
  assert.is(s.schedule(d, p), i);
  d.weight[i] = 0; s.rebuild(d);
  assert.is(s.schedule(d, p), NO_DEST);
  d.weight[i] = 1; s.rebuild(d); overload(d, i);
  assert.is(s.schedule(d, p), NO_DEST);
  overload(d, i, false); d.flags[i] = 0;
  assert.is(s.schedule(d, p), NO_DEST);
});

const st = suite("dh stability");
st("same list → same mapping across rebuilds and instances", () => {
  const list: [number, number][] = [[4, 1], [3, 2], [2, 1], [1, 5]];
  const addrs = randomAddrs(4, 5000);
  const a = dh(0); const d1 = dests(list); a.rebuild(d1);
  const first = map(a, d1, addrs);
  const d2 = dests(list); a.rebuild(d2);
  assert.equal(map(a, d2, addrs), first);
  const b = dh(0); b.rebuild(d2);
  assert.equal(map(b, d2, addrs), first);
});
st("a destination going down, quiesced or overloaded moves only its own addresses", () => {
  const list: [number, number][] = [[4, 1], [3, 1], [2, 1], [1, 1]];
  const addrs = randomAddrs(5, 5000);
  const s = dh(0); const d = dests(list); s.rebuild(d);
  const before = map(s, d, addrs);
  d.weight[1] = 0; s.rebuild(d); // quiesce id 3 (the weight is ignored by the fill)
  const after = map(s, d, addrs);
  let moved = 0;
  for (let k = 0; k < addrs.length; k++) {
    if (before[k] === 3) { assert.is(after[k], NO_DEST); moved++; } else assert.is(after[k], before[k]);
  }
  assert.ok(moved > 0);
});
st("deleting a destination re-deals the buckets mod n-1, as the kernel's reassign does", () => {
  const s = new DestinationHash();
  s.rebuild(dests([[4, 1], [3, 1], [2, 1], [1, 1]]));
  s.rebuild(dests([[4, 1], [3, 1], [2, 1]]));
  for (let b = 0; b < DH_TAB_SIZE; b++) assert.is(s.buckets[b], b % 3);
});

s.run();
st.run();
