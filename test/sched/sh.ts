// sh: weighted 256-bucket fill, hash_32 of client address (+ port with sh-port),
// sh-fallback walk, IPv6 folding, stability across rebuilds and unavailability.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DestSet, NO_DEST, type Scheduler } from "../../src/sched/scheduler.ts";
import { Pkt } from "../../src/wire/pkt.ts";
import { SH_FALLBACK, SH_PORT, SH_TAB_SIZE, SourceHash, sh, shBucket } from "../../src/sched/sh.ts";
import { ip4, rng } from "../fixtures/builder.ts";
import { dests, overload } from "../helpers/sched.ts";

function hash32Ref(x: number, bits: number): number {
  return Number(((BigInt(x >>> 0) * 0x61c88647n) & 0xffffffffn) >> BigInt(32 - bits));
}
function client(p: Pkt, a: number, sport = 40000, proto = 6): Pkt {
  p.ipv = 4; p.proto = proto; p.src0 = a; p.src1 = 0; p.src2 = 0; p.src3 = 0; p.sport = sport; p.dport = 80;
  p.dst0 = ip4("198.18.0.1");
  return p;
}
function map(s: Scheduler, d: DestSet, addrs: number[]): number[] {
  const p = new Pkt();
  return addrs.map((a) => { const x = s.schedule(d, client(p, a)); return x < 0 ? x : d.id[x]; });
}
function randomAddrs(seed: number, n: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => (ip4("198.18.0.0") + Math.floor(r() * 131072)) | 0);
}
/** Slow reference of ip_vs_sh_get / ip_vs_sh_get_fallback over a bucket table of ids (-1 empty). */
function slowSh(table: number[], usable: (id: number) => boolean, addr: number, port: number, fallback: boolean): number {
  const key = (v: number, off: number) => (off + hash32Ref((port + v) >>> 0, 8)) % 256;
  const ih = key(addr, 0);
  if (table[ih] < 0) return NO_DEST;
  if (usable(table[ih])) return table[ih];
  if (!fallback) return NO_DEST;
  for (let k = 0; k < 256; k++) {
    const id = table[key(addr, (k + ih) % 256)];
    if (id < 0) return NO_DEST;
    if (usable(id)) return id;
  }
  return NO_DEST;
}

const s = suite("sh");
s("fill: max(weight, 1) consecutive buckets each, cyclically: [A(2),B(0),C(3)]", () => {
  const s = new SourceHash(0);
  s.rebuild(dests([[1, 2], [2, 0], [3, 3]]));
  assert.equal(Array.from(s.buckets.subarray(0, 12)), [0, 0, 1, 2, 2, 2, 0, 0, 1, 2, 2, 2]);
  assert.is(s.buckets[255], [0, 0, 1, 2, 2, 2][255 % 6]);
  s.rebuild(dests([]));
  assert.ok(s.buckets.every((b) => b === -1));
});
s("a weight above 256 takes the whole table", () => {
  const s = new SourceHash(0);
  s.rebuild(dests([[1, 300], [2, 1]]));
  assert.ok(s.buckets.every((b) => b === 0));
});
s("bucket = (offset + hash_32(port + ntohl(addr), 8)) & 255", () => {
  const r = rng(1);
  for (let k = 0; k < 10_000; k++) {
    const a = (r() * 2 ** 32) | 0, port = Math.floor(r() * 65536), off = Math.floor(r() * 256);
    assert.is(shBucket(a, port, off), (off + hash32Ref((a + port) >>> 0, 8)) & 255);
  }
});
s("client address picks the bucket; ports only with sh-port and only for TCP/UDP/SCTP", () => {
  const d = dests([[1, 1], [2, 2], [3, 1], [4, 3]]);
  const plain = sh(0); plain.rebuild(d);
  const port = sh(SH_PORT); port.rebuild(d);
  const table = Array.from((plain as SourceHash).buckets, (i) => d.id[i]);
  const p = new Pkt();
  const r = rng(2);
  for (let k = 0; k < 3000; k++) {
    const a = (ip4("198.18.0.0") + Math.floor(r() * 131072)) | 0, sp = 1024 + Math.floor(r() * 60000);
    const proto = [6, 17, 132, 1][k % 4];
    const id = (x: number) => (x < 0 ? x : d.id[x]);
    assert.is(id(plain.schedule(d, client(p, a, sp, proto))), slowSh(table, () => true, a, 0, false));
    assert.is(id(port.schedule(d, client(p, a, sp, proto))), slowSh(table, () => true, a, proto === 1 ? 0 : sp, false));
  }
});
s("IPv6 client: the four words are folded by XOR", () => {
  const d = dests([[1, 1], [2, 1], [3, 1]]);
  const s = sh(0); s.rebuild(d);
  const p = new Pkt(); p.ipv = 6; p.proto = 6;
  p.src0 = 0x20010002; p.src1 = 0x00000001; p.src2 = 0; p.src3 = 0x99;
  assert.is(s.schedule(d, p), hash32Ref((0x20010002 ^ 1 ^ 0x99) >>> 0, 8) % 3);
});
s("unavailable (weight 0, OVERLOAD, down) without sh-fallback → NO_DEST", () => {
  const d = dests([[1, 1], [2, 1]]);
  const s = sh(0); s.rebuild(d);
  const p = client(new Pkt(), ip4("198.18.3.4"));
  const i = s.schedule(d, p);
  d.weight[i] = 0; s.rebuild(d);
  assert.is(s.schedule(d, p), NO_DEST, "weight 0");
  d.weight[i] = 1; s.rebuild(d); overload(d, i);
  assert.is(s.schedule(d, p), NO_DEST, "overload");
  overload(d, i, false); d.flags[i] = 0;
  assert.is(s.schedule(d, p), NO_DEST, "down");
});
s("sh-fallback walks the kernel's offset sequence to the first available bucket", () => {
  const list: [number, number][] = [[1, 1], [2, 3], [3, 2], [4, 1], [5, 2]];
  const d = dests(list);
  const s = sh(SH_FALLBACK); s.rebuild(d);
  const table = Array.from((s as SourceHash).buckets, (i) => d.id[i]);
  overload(d, 1); d.flags[3] = 0; // ids 2 and 4 unavailable
  const down = new Set([2, 4]);
  const addrs = randomAddrs(6, 5000);
  const got = map(s, d, addrs);
  const want = addrs.map((a) => slowSh(table, (id) => !down.has(id), a, 0, true));
  assert.equal(got, want);
  assert.ok(!got.some((id) => down.has(id)));
});
s("sh-fallback with nothing available → NO_DEST", () => {
  const d = dests([[1, 0], [2, 0]]);
  const s = sh(SH_FALLBACK | SH_PORT); s.rebuild(d);
  assert.is(s.schedule(d, client(new Pkt(), ip4("198.18.0.9"))), NO_DEST);
});

const st = suite("sh stability");
st("same list → same mapping across rebuilds and instances", () => {
  const list: [number, number][] = [[4, 1], [3, 2], [2, 1], [1, 5]];
  const addrs = randomAddrs(7, 5000);
  const a = sh(0); const d1 = dests(list); a.rebuild(d1);
  const first = map(a, d1, addrs);
  a.rebuild(dests(list));
  assert.equal(map(a, dests(list), addrs), first);
  const b = sh(0); b.rebuild(dests(list));
  assert.equal(map(b, dests(list), addrs), first);
});
st("one destination going down moves only its own clients (to NO_DEST, or with sh-fallback to others)", () => {
  const list: [number, number][] = [[5, 1], [4, 1], [3, 1], [2, 1], [1, 1]];
  const addrs = randomAddrs(8, 20_000);
  for (const flags of [0, SH_FALLBACK]) {
    const s = sh(flags); const d = dests(list); s.rebuild(d);
    const before = map(s, d, addrs);
    d.flags[2] = 0; // id 3 down (health): the table is not re-dealt
    const after = map(s, d, addrs);
    for (let k = 0; k < addrs.length; k++) {
      if (before[k] !== 3) { assert.is(after[k], before[k]); continue; }
      if (flags === 0) assert.is(after[k], NO_DEST);
      // The kernel's walk starts at bucket 2*ihash and goes on consecutively, so with
      // equal weights the moved clients land mostly on one or two neighbours.
      else assert.ok(after[k] > 0 && after[k] !== 3);
    }
  }
});
st("a weight change re-runs the fill (kernel reassign): the table follows the new weights", () => {
  const s = new SourceHash(0);
  s.rebuild(dests([[1, 1], [2, 1]]));
  s.rebuild(dests([[1, 3], [2, 1]]));
  assert.equal(Array.from(s.buckets.subarray(0, 8)), [0, 0, 0, 1, 0, 0, 0, 1]);
  assert.is(s.buckets.length, SH_TAB_SIZE);
});

s.run();
st.run();
