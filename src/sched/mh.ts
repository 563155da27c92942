// mh — Maglev hashing (ip_vs_mh.c; Eisenbud et al., NSDI '16, §3.4). All the work is in
// rebuild(): a lookup table of M = 4093 slots (the prime for the Kconfig default
// CONFIG_IP_VS_MH_TAB_INDEX = 12) filled from per-destination permutations; schedule()
// is one hash and one table read.
//
// rebuild(), as ip_vs_mh_dest_changed → gcd/shift → permutate → populate:
//  * last_weight per destination: set to the weight when the destination is new (a
//    different id, address or port than at the previous rebuild), else only when the
//    new weight is non-zero (__ip_vs_update_dest), so a quiesced server keeps its slots.
//  * gcd = gcd of last_weights > 0 (none → empty table → no destination);
//    rshift = max(0, fls(max_last_weight / gcd) − 6);
//    turns = (last_weight / gcd) >> rshift, or 1 if that is 0 and last_weight != 0.
//  * v = dest port + ntohl(fold(dest addr)) (u32); offset = H1(v) mod M;
//    skip = H2(v) mod (M − 1) + 1. Rounds over the list: each destination with turns ≥ 1
//    claims `turns` slots, each its next free preferred slot (offset + j·skip mod M),
//    until all M slots are filled.
// schedule(): index = H1(port + ntohl(fold(client addr))) mod M, port = client source
// port with mh-port (-b flag-2) for TCP/UDP/SCTP, else 0. Unavailable (weight ≤ 0,
// OVERLOAD, or not available) → no destination, unless mh-fallback (-b flag-1): for
// k = 0..M−1 the index is recomputed from v = ((k + index0) mod M) + port + addr; an
// empty slot stops; the first available destination wins.
//
// H1/H2 are the kernel's hsiphash on 64-bit kernels, i.e. SipHash-1-3 with 64-bit
// words over the 4-byte host-endian (little-endian) value, keys {2654435761, 2654435761}
// and {2654446892, 2654446892}. Implemented here on (hi, lo) int32 halves — 64-bit add
// with carry, rotate and xor — so it is bit-exact with an x86-64 kernel with no BigInt
// and no allocation. (32-bit kernels use HalfSipHash-1-3 and give other tables.)
import { IPPROTO_TCP, IPPROTO_UDP } from "../wire/ipv4.ts";
import type { Pkt } from "../wire/pkt.ts";
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

/** primes[CONFIG_IP_VS_MH_TAB_INDEX - 8] with the Kconfig default index 12. */
export const MH_TAB_SIZE = 4093;
/** IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2. */
export const MH_TAB_BITS = 6;
const IPPROTO_SCTP = 132;
/** -b bits (scheduler.ts): flag-1 = mh-fallback, flag-2 = mh-port. */
export const MH_FALLBACK = 1;
export const MH_PORT = 2;
/** generate_hash_secret(): both 64-bit key words of H1 are 2654435761, of H2 2654446892. */
const H1_KEY = 2654435761 | 0;
const H2_KEY = 2654446892 | 0;

/**
 * hsiphash_1u32 of a 64-bit kernel (SipHash-1-3, 64-bit state) on `v` (u32, as int32
 * bits), key words k0 = (k0h:k0l), k1 = (k1h:k1l). Returns the u32 result (the low half
 * of v0^v1^v2^v3). Every 64-bit lane is a pair of int32 locals; no allocation.
 */
export function hsiphash32(v: number, k0l: number, k0h: number, k1l: number, k1h: number): number {
  // PREAMBLE: "somepseudorandomlygeneratedbytes" xor the key.
  let v0h = 0x736f6d65 ^ k0h, v0l = 0x70736575 ^ k0l;
  let v1h = 0x646f7261 ^ k1h, v1l = 0x6e646f6d ^ k1l;
  let v2h = 0x6c796765 ^ k0h, v2l = 0x6e657261 ^ k0l;
  let v3h = 0x74656462 ^ k1h, v3l = 0x79746573 ^ k1l;
  // b = (len << 56) | the 4 message bytes read little-endian, len = 4.
  const bh = 0x04000000;
  const bl = v | 0;
  v3h ^= bh; v3l ^= bl;
  let lo = 0;
  let t = 0;
  // One compression round, then v0 ^= b, v2 ^= 0xff and three finalisation rounds.
  for (let r = 0; r < 4; r++) {
    if (r === 1) { v0h ^= bh; v0l ^= bl; v2l ^= 0xff; }
    // v0 += v1; v1 = rol(v1, 13); v1 ^= v0; v0 = rol(v0, 32)
    lo = (v0l + v1l) | 0; v0h = (v0h + v1h + ((lo >>> 0) < (v0l >>> 0) ? 1 : 0)) | 0; v0l = lo;
    t = v1h; v1h = (v1h << 13) | (v1l >>> 19); v1l = (v1l << 13) | (t >>> 19);
    v1h ^= v0h; v1l ^= v0l;
    t = v0h; v0h = v0l; v0l = t;
    // v2 += v3; v3 = rol(v3, 16); v3 ^= v2
    lo = (v2l + v3l) | 0; v2h = (v2h + v3h + ((lo >>> 0) < (v2l >>> 0) ? 1 : 0)) | 0; v2l = lo;
    t = v3h; v3h = (v3h << 16) | (v3l >>> 16); v3l = (v3l << 16) | (t >>> 16);
    v3h ^= v2h; v3l ^= v2l;
    // v0 += v3; v3 = rol(v3, 21); v3 ^= v0
    lo = (v0l + v3l) | 0; v0h = (v0h + v3h + ((lo >>> 0) < (v0l >>> 0) ? 1 : 0)) | 0; v0l = lo;
    t = v3h; v3h = (v3h << 21) | (v3l >>> 11); v3l = (v3l << 21) | (t >>> 11);
    v3h ^= v0h; v3l ^= v0l;
    // v2 += v1; v1 = rol(v1, 17); v1 ^= v2; v2 = rol(v2, 32)
    lo = (v2l + v1l) | 0; v2h = (v2h + v1h + ((lo >>> 0) < (v2l >>> 0) ? 1 : 0)) | 0; v2l = lo;
    t = v1h; v1h = (v1h << 17) | (v1l >>> 15); v1l = (v1l << 17) | (t >>> 15);
    v1h ^= v2h; v1l ^= v2l;
    t = v2h; v2h = v2l; v2l = t;
  }
  return (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
}

/** H1 of ip_vs_mh_hashkey: v = offset + port + ntohl(fold) (u32). */
export function mhHash1(v: number): number {
  return hsiphash32(v, H1_KEY, 0, H1_KEY, 0);
}
/** H2 of ip_vs_mh_hashkey (skip). */
export function mhHash2(v: number): number {
  return hsiphash32(v, H2_KEY, 0, H2_KEY, 0);
}

function gcd(a: number, b: number): number {
  while (b !== 0) { const t = a % b; a = b; b = t; }
  return a;
}

/** fls(): 1-based index of the most significant set bit, 0 for 0. */
function fls(x: number): number {
  return 32 - Math.clz32(x);
}

export class MaglevHash implements Scheduler {
  readonly name = "mh";
  /** Slot → destination index in the DestSet of the last rebuild; -1 = empty. */
  readonly lookup = new Int32Array(MH_TAB_SIZE).fill(-1);
  /** gcd of the last_weights > 0 and the shift of the last rebuild (for tests and -L debugging). */
  gcd = 0;
  rshift = 0;
  private readonly fallback: boolean;
  private readonly usePort: boolean;
  /** Previous rebuild's destinations: id, addr (4 words), port and last_weight per index. */
  private prevId = new Int32Array(0);
  private prevAddr = new Int32Array(0);
  private prevPort = new Int32Array(0);
  private prevLastWeight = new Int32Array(0);
  /** last_weight per index of the current DestSet. */
  lastWeight = new Int32Array(0);
  private readonly used = new Uint8Array(MH_TAB_SIZE);

  constructor(schedFlags: number) {
    this.fallback = (schedFlags & MH_FALLBACK) !== 0;
    this.usePort = (schedFlags & MH_PORT) !== 0;
  }

  rebuild(d: DestSet): void {
    const n = d.count;
    // last_weight: the weight for a new destination, else the latest non-zero weight.
    const prevById = new Map<number, number>();
    for (let k = 0; k < this.prevId.length; k++) prevById.set(this.prevId[k], k);
    const lw = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const k = prevById.get(d.id[i]);
      const same = k !== undefined && this.prevPort[k] === d.port[i] &&
        this.prevAddr[k * 4] === d.addr[i * 4] && this.prevAddr[k * 4 + 1] === d.addr[i * 4 + 1] &&
        this.prevAddr[k * 4 + 2] === d.addr[i * 4 + 2] && this.prevAddr[k * 4 + 3] === d.addr[i * 4 + 3];
      lw[i] = same && d.weight[i] === 0 ? this.prevLastWeight[k!] : d.weight[i];
    }
    this.prevId = d.id.slice();
    this.prevAddr = d.addr.slice();
    this.prevPort = d.port.slice();
    this.prevLastWeight = lw;
    this.lastWeight = lw;

    // ip_vs_mh_gcd_weight / ip_vs_mh_shift_weight
    let g = 0;
    let mw = 0;
    for (let i = 0; i < n; i++) {
      const w = lw[i];
      if (w > 0) g = g > 0 ? gcd(w, g) : w;
      if (w > mw) mw = w;
    }
    this.gcd = g;
    this.rshift = g < 1 ? 0 : Math.max(0, fls(Math.trunc(mw / g)) - MH_TAB_BITS);
    this.lookup.fill(-1);
    if (g < 1) return;

    // ip_vs_mh_permutate
    const perm = new Int32Array(n);
    const skip = new Int32Array(n);
    const turns = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const b = i * 4;
      const v = (d.port[i] + (d.addr[b] ^ d.addr[b + 1] ^ d.addr[b + 2] ^ d.addr[b + 3])) | 0;
      perm[i] = mhHash1(v) % MH_TAB_SIZE;
      skip[i] = (mhHash2(v) % (MH_TAB_SIZE - 1)) + 1;
      const t = Math.trunc(lw[i] / g) >> this.rshift;
      turns[i] = t !== 0 ? t : lw[i] !== 0 ? 1 : 0;
    }

    // ip_vs_mh_populate: rounds over the list, `turns` claims per destination per round.
    const used = this.used;
    used.fill(0);
    let filled = 0;
    while (filled < MH_TAB_SIZE) {
      for (let i = 0; i < n && filled < MH_TAB_SIZE; i++) {
        for (let c = 0; c < turns[i] && filled < MH_TAB_SIZE; c++) {
          let s = perm[i];
          while (used[s] !== 0) {
            s += skip[i];
            if (s >= MH_TAB_SIZE) s -= MH_TAB_SIZE;
          }
          perm[i] = s;
          used[s] = 1;
          this.lookup[s] = i;
          filled++;
        }
      }
    }
  }

  schedule(d: DestSet, p: Pkt): number {
    const fold = p.src0 ^ p.src1 ^ p.src2 ^ p.src3;
    const proto = p.proto;
    const port = this.usePort && (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP) ? p.sport : 0;
    const key = (port + fold) | 0;
    const ihash = mhHash1(key) % MH_TAB_SIZE;
    const first = this.lookup[ihash];
    if (first < 0) return NO_DEST;
    if (d.usable(first)) return first;
    if (!this.fallback) return NO_DEST;
    for (let k = 0; k < MH_TAB_SIZE; k++) {
      const roffset = (k + ihash) % MH_TAB_SIZE;
      const i = this.lookup[mhHash1((roffset + key) | 0) % MH_TAB_SIZE];
      if (i < 0) return NO_DEST;
      if (d.usable(i)) return i;
    }
    return NO_DEST;
  }
}

export const mh: SchedulerFactory = (schedFlags) => new MaglevHash(schedFlags);
