// mh: hsiphash bit-exactness (kernel self-test vector, BigInt SipHash-1-3 reference),
// the table against a naive Maglev fill, last_weight, gcd/shift, lookup and fallback,
// and the consistency and weight-share properties on seeded random clients.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DestSet, NO_DEST, type Scheduler } from "../../src/sched/scheduler.ts";
import { Pkt } from "../../src/wire/pkt.ts";
import { MH_FALLBACK, MH_PORT, MH_TAB_SIZE, MaglevHash, hsiphash32, mh, mhHash1, mhHash2 } from "../../src/sched/mh.ts";
import { ip4, rng } from "../fixtures/builder.ts";
import { dests, overload } from "../helpers/sched.ts";

const M = MH_TAB_SIZE;
const MASK64 = (1n << 64n) - 1n;
function rotl(x: bigint, b: number): bigint {
  return ((x << BigInt(b)) | (x >> BigInt(64 - b))) & MASK64;
}
/** lib/siphash.c hsiphash_1u32 on a 64-bit kernel (SipHash-1-3), straight from the definition, in BigInt. */
function hsiphashRef(v: number, k0: bigint, k1: bigint): number {
  let v0 = 0x736f6d6570736575n ^ k0, v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0, v3 = 0x7465646279746573n ^ k1;
  const b = (4n << 56n) | BigInt(v >>> 0);
  const round = () => {
    v0 = (v0 + v1) & MASK64; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 = (v2 + v3) & MASK64; v3 = rotl(v3, 16); v3 ^= v2;
    v0 = (v0 + v3) & MASK64; v3 = rotl(v3, 21); v3 ^= v0;
    v2 = (v2 + v1) & MASK64; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
  };
  v3 ^= b; round(); v0 ^= b; v2 ^= 0xffn; round(); round(); round();
  return Number((v0 ^ v1 ^ v2 ^ v3) & 0xffffffffn);
}
const H1 = (v: number) => hsiphashRef(v, 2654435761n, 2654435761n);
const H2 = (v: number) => hsiphashRef(v, 2654446892n, 2654446892n);

interface RefDest { addr: number; port: number; lastWeight: number }
/**
 * Naive Maglev (paper §3.4 with IPVS's turns): each destination's full preference list
 * offset + j*skip mod M, then rounds in list order, `turns` claims per destination.
 * Returns slot → list index (-1 empty).
 */
function naiveMaglev(ds: RefDest[]): number[] {
  const table = new Array<number>(M).fill(-1);
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  let g = 0, mw = 0;
  for (const d of ds) { if (d.lastWeight > 0) g = g ? gcd(d.lastWeight, g) : d.lastWeight; mw = Math.max(mw, d.lastWeight); }
  if (g < 1) return table;
  const rshift = Math.max(0, Math.floor(mw / g).toString(2).length - 6);
  const prefs = ds.map((d) => {
    const v = (d.port + d.addr) >>> 0;
    const offset = H1(v) % M, skip = (H2(v) % (M - 1)) + 1;
    return Array.from({ length: M }, (_, j) => (offset + j * skip) % M);
  });
  const turns = ds.map((d) => (Math.floor(d.lastWeight / g) >> rshift) || (d.lastWeight !== 0 ? 1 : 0));
  const next = ds.map(() => 0);
  let filled = 0;
  while (filled < M) {
    for (let i = 0; i < ds.length && filled < M; i++) {
      for (let c = 0; c < turns[i] && filled < M; c++) {
        while (table[prefs[i][next[i]]] >= 0) next[i]++;
        table[prefs[i][next[i]]] = i;
        filled++;
      }
    }
  }
  return table;
}
function dset(list: [number, number][], addrs: number[], ports: number[]): DestSet {
  const d = dests(list);
  for (let i = 0; i < list.length; i++) { d.addr[i * 4] = addrs[i]; d.port[i] = ports[i]; }
  return d;
}
/** n destinations 198.18.1.(1+i):80 with the given weights. */
function service(weights: number[], firstId = 1): DestSet {
  return dset(weights.map((w, i) => [firstId + i, w]), weights.map((_, i) => ip4("198.18.1.1") + i), weights.map(() => 80));
}
function client(p: Pkt, a: number, sport = 40000, proto = 6): Pkt {
  p.ipv = 4; p.proto = proto; p.src0 = a; p.src1 = 0; p.src2 = 0; p.src3 = 0; p.sport = sport; p.dport = 80;
  return p;
}
function map(s: Scheduler, d: DestSet, addrs: number[]): number[] {
  const p = new Pkt();
  return addrs.map((a) => { const x = s.schedule(d, client(p, a)); return x < 0 ? x : d.id[x]; });
}
/** Random client addresses over 0.0.0.0/0 (hash inputs only; never on a wire). */
function randomClients(seed: number, n: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => (r() * 2 ** 32) | 0);
}

const h = suite("mh hsiphash");
h("kernel self-test vector: hsiphash_1u32(0x03020100, key 00..0f) = 0x88d38328 (64-bit)", () => {
  assert.is(hsiphash32(0x03020100, 0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c), 0x88d38328);
  assert.is(hsiphashRef(0x03020100, 0x0706050403020100n, 0x0f0e0d0c0b0a0908n), 0x88d38328);
});
h("equals the BigInt SipHash-1-3 on 20 000 random values and keys (seed 1)", () => {
  const r = rng(1);
  const w = () => (r() * 2 ** 32) >>> 0;
  for (let k = 0; k < 20_000; k++) {
    const v = w(), a = w(), b = w(), c = w(), e = w();
    const k0 = (BigInt(b) << 32n) | BigInt(a), k1 = (BigInt(e) << 32n) | BigInt(c);
    assert.is(hsiphash32(v | 0, a | 0, b | 0, c | 0, e | 0), hsiphashRef(v, k0, k1));
  }
  for (let k = 0; k < 2000; k++) { const v = w(); assert.is(mhHash1(v | 0), H1(v)); assert.is(mhHash2(v | 0), H2(v)); }
});

const t = suite("mh table");
t("equals the naive Maglev fill on 60 random services (seed 2)", () => {
  const r = rng(2);
  for (let k = 0; k < 60; k++) {
    const n = 1 + Math.floor(r() * 12);
    const weights = Array.from({ length: n }, () => (r() < 0.15 ? 0 : 1 + Math.floor(r() * (r() < 0.2 ? 5000 : 20))));
    const addrs = weights.map(() => (ip4("198.18.0.0") + Math.floor(r() * 131072)) | 0);
    const ports = weights.map(() => Math.floor(r() * 65536));
    const d = dset(weights.map((w, i) => [i + 1, w]), addrs, ports);
    const s = new MaglevHash(0); s.rebuild(d);
    const want = naiveMaglev(weights.map((w, i) => ({ addr: addrs[i], port: ports[i], lastWeight: w })));
    assert.equal(Array.from(s.lookup), want, `service ${k}: weights ${weights}`);
  }
});
t("gcd and shift: [100,200,300] → turns 1,2,3; [1,1000] → rshift 4", () => {
  const s = new MaglevHash(0);
  s.rebuild(service([100, 200, 300]));
  assert.is(s.gcd, 100); assert.is(s.rshift, 0);
  const c = [0, 0, 0];
  for (const i of s.lookup) c[i]++;
  assert.equal(c.reduce((a, b) => a + b), M);
  assert.ok(Math.abs(c[0] / M - 1 / 6) < 0.01 && Math.abs(c[2] / M - 3 / 6) < 0.01, `${c}`);
  s.rebuild(service([1, 1000]));
  assert.is(s.gcd, 1); assert.is(s.rshift, 4); // fls(1000) = 10, minus 6
});
t("no weight ever > 0 → empty table → NO_DEST; an empty service too", () => {
  const d = service([0, 0]);
  const s = new MaglevHash(MH_FALLBACK); s.rebuild(d);
  assert.ok(s.lookup.every((x) => x === -1));
  assert.is(s.schedule(d, client(new Pkt(), ip4("198.18.7.7"))), NO_DEST);
  const e = dests([]); s.rebuild(e);
  assert.is(s.schedule(e, client(new Pkt(), ip4("198.18.7.7"))), NO_DEST);
});
t("quiescing (weight → 0) keeps last_weight: same table, its clients get NO_DEST", () => {
  const d = service([1, 2, 3]);
  const s = new MaglevHash(0); s.rebuild(d);
  const before = Array.from(s.lookup);
  const addrs = randomClients(3, 20_000);
  const m0 = map(s, d, addrs);
  d.weight[1] = 0; s.rebuild(d);
  assert.equal(Array.from(s.lookup), before);
  assert.equal(Array.from(s.lastWeight), [1, 2, 3]);
  const m1 = map(s, d, addrs);
  for (let k = 0; k < addrs.length; k++) assert.is(m1[k], m0[k] === 2 ? NO_DEST : m0[k]);
  d.weight[1] = 5; s.rebuild(d); // a new non-zero weight replaces last_weight
  assert.equal(Array.from(s.lastWeight), [1, 5, 3]);
});
t("a destination added with weight 0 gets no slots; a replaced one (new address, same id) starts afresh", () => {
  const s = new MaglevHash(0);
  s.rebuild(service([0, 4], 1));
  assert.ok(s.lookup.every((x) => x === 1));
  const d = service([3, 4], 1); s.rebuild(d);
  const d2 = service([0, 4], 1); d2.addr[0] = ip4("198.18.9.9"); s.rebuild(d2);
  assert.equal(Array.from(s.lastWeight), [0, 4]);
});

const l = suite("mh lookup");
l("index = H1(ntohl(client)) mod M; mh-port adds the source port for TCP/UDP/SCTP only", () => {
  const d = service([1, 1, 1, 1, 1]);
  const plain = new MaglevHash(0); plain.rebuild(d);
  const port = new MaglevHash(MH_PORT); port.rebuild(d);
  const p = new Pkt();
  const r = rng(4);
  for (let k = 0; k < 3000; k++) {
    const a = (r() * 2 ** 32) | 0, sp = Math.floor(r() * 65536), proto = [6, 17, 132, 1][k % 4];
    assert.is(plain.schedule(d, client(p, a, sp, proto)), plain.lookup[H1(a >>> 0) % M]);
    const v = proto === 1 ? a >>> 0 : (a + sp) >>> 0;
    assert.is(port.schedule(d, client(p, a, sp, proto)), port.lookup[H1(v) % M]);
  }
});
l("IPv6 client: words folded by XOR", () => {
  const d = service([1, 2, 3]);
  const s = new MaglevHash(0); s.rebuild(d);
  const p = new Pkt(); p.ipv = 6; p.proto = 6;
  p.src0 = 0x20010002; p.src1 = 5; p.src2 = 0x10000; p.src3 = -7;
  assert.is(s.schedule(d, p), s.lookup[H1((0x20010002 ^ 5 ^ 0x10000 ^ -7) >>> 0) % M]);
});
l("unavailable without mh-fallback → NO_DEST; with it, the kernel's rehash walk", () => {
  const d = service([1, 2, 3, 1, 2]);
  const s0 = new MaglevHash(0); s0.rebuild(d);
  const s1 = new MaglevHash(MH_FALLBACK); s1.rebuild(d);
  overload(d, 1); d.flags[2] = 0; d.weight[4] = 0; // ids 2, 3, 5 unavailable (5 keeps its slots)
  s0.rebuild(d); s1.rebuild(d);
  const ok = (i: number) => i === 0 || i === 3;
  const slow = (a: number): number => {
    const ih = H1(a >>> 0) % M;
    if (ok(s1.lookup[ih])) return s1.lookup[ih];
    for (let k = 0; k < M; k++) {
      const i = s1.lookup[H1((((k + ih) % M) + a) >>> 0) % M];
      if (ok(i)) return i;
    }
    return NO_DEST;
  };
  const p = new Pkt();
  for (const a of randomClients(5, 5000)) {
    const want = slow(a);
    const first = s0.lookup[H1(a >>> 0) % M];
    assert.is(s0.schedule(d, client(p, a)), ok(first) ? first : NO_DEST);
    assert.is(s1.schedule(d, client(p, a)), want);
  }
});

const pr = suite("mh properties");
pr("removing one of 10 destinations moves ~1/10 of clients (≤ 1/10 + 3 %) (seed 6)", () => {
  const addrs = randomClients(6, 100_000);
  const weights = Array.from({ length: 10 }, () => 1);
  const d = service(weights);
  const s = mh(0); s.rebuild(d);
  const before = map(s, d, addrs);
  // Delete the destination with id 4 (position 3): a new list without it.
  const keep = [0, 1, 2, 4, 5, 6, 7, 8, 9];
  const d2 = dset(keep.map((i) => [d.id[i], 1]), keep.map((i) => d.addr[i * 4]), keep.map(() => 80));
  s.rebuild(d2);
  const after = map(s, d2, addrs);
  let moved = 0, fromGone = 0;
  for (let k = 0; k < addrs.length; k++) {
    if (before[k] !== after[k]) moved++;
    if (before[k] === 4) { fromGone++; assert.ok(after[k] !== 4); }
  }
  const frac = moved / addrs.length;
  assert.ok(frac <= 0.1 + 0.03, `moved ${frac}`);
  assert.ok(fromGone / addrs.length > 0.07, `gone ${fromGone / addrs.length}`);
});
pr("shares follow the weights 1:2:3 within 2 % over 100 000 clients (seed 7)", () => {
  const addrs = randomClients(7, 100_000);
  const d = service([1, 2, 3]);
  const s = mh(0); s.rebuild(d);
  const c = new Map<number, number>();
  for (const id of map(s, d, addrs)) c.set(id, (c.get(id) ?? 0) + 1);
  for (const [id, w] of [[1, 1], [2, 2], [3, 3]]) {
    const share = c.get(id)! / addrs.length;
    assert.ok(Math.abs(share - w / 6) < 0.02, `id ${id}: ${share}`);
  }
});
pr("same list → same table across rebuilds and instances", () => {
  const a = new MaglevHash(0), b = new MaglevHash(0);
  a.rebuild(service([3, 1, 4, 1, 5]));
  const t0 = Array.from(a.lookup);
  a.rebuild(service([3, 1, 4, 1, 5]));
  b.rebuild(service([3, 1, 4, 1, 5]));
  assert.equal(Array.from(a.lookup), t0);
  assert.equal(Array.from(b.lookup), t0);
});

h.run();
t.run();
l.run();
pr.run();
