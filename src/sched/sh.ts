// sh — source hashing (ip_vs_sh.c). A 256-bucket table built in rebuild(): walk the list
// cyclically, each destination taking max(weight, 1) consecutive buckets, until all 256
// are filled (a weight-0 destination still holds one bucket). Key: the client source
// address, IPv6 folded by XOR of its four words, plus the client source port when
// sh-port (-b flag-2) is set and the protocol is TCP, UDP or SCTP (else port 0).
// Bucket (current kernels) = (offset + hash_32(port + ntohl(fold), 8)) & 255 with
// hash_32(x, 8) = (x * 0x61C88647 mod 2^32) >> 24; offset 0 for the primary lookup.
// (Kernels before the hash_32 conversion used (offset + (port + addr) * 2654435761) & 255.)
// Unavailable = weight <= 0, OVERLOAD, or not available (health).
//   without sh-fallback (-b flag-1): unavailable → no destination;
//   with it: for k = 0..255, roffset = (k + primary) mod 256, recompute the bucket with
//   that offset; an empty bucket stops the search; the first available one wins.
// Only unavailability is absorbed without re-dealing: any weight change or deletion
// re-runs the fill, exactly as the kernel's reassign does. schedule(): no allocation.
import { IPPROTO_TCP, IPPROTO_UDP } from "../wire/ipv4.ts";
import type { Pkt } from "../wire/pkt.ts";
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

export const SH_TAB_BITS = 8;
export const SH_TAB_SIZE = 1 << SH_TAB_BITS;
const SH_TAB_MASK = SH_TAB_SIZE - 1;
const GOLDEN_RATIO_32 = 0x61c88647;
const IPPROTO_SCTP = 132;
/** -b bits (scheduler.ts): flag-1 = sh-fallback, flag-2 = sh-port. */
export const SH_FALLBACK = 1;
export const SH_PORT = 2;

/** ip_vs_sh_hashkey: bucket for (folded host-order address + port) at `offset`. */
export function shBucket(fold: number, port: number, offset: number): number {
  return (offset + (Math.imul((port + fold) | 0, GOLDEN_RATIO_32) >>> (32 - SH_TAB_BITS))) & SH_TAB_MASK;
}

export class SourceHash implements Scheduler {
  readonly name = "sh";
  /** Bucket → destination index in the DestSet of the last rebuild; -1 = empty. */
  readonly buckets = new Int32Array(SH_TAB_SIZE).fill(-1);
  private readonly fallback: boolean;
  private readonly usePort: boolean;

  constructor(schedFlags: number) {
    this.fallback = (schedFlags & SH_FALLBACK) !== 0;
    this.usePort = (schedFlags & SH_PORT) !== 0;
  }

  rebuild(d: DestSet): void {
    const n = d.count;
    let i = 0;
    let taken = 0;
    for (let b = 0; b < SH_TAB_SIZE; b++) {
      if (n === 0) { this.buckets[b] = -1; continue; }
      this.buckets[b] = i;
      // "Don't move to next dest until filling weight": max(weight, 1) buckets each.
      if (++taken >= d.weight[i]) { i = (i + 1) % n; taken = 0; }
    }
  }

  schedule(d: DestSet, p: Pkt): number {
    const fold = p.src0 ^ p.src1 ^ p.src2 ^ p.src3;
    const proto = p.proto;
    const port = this.usePort && (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP) ? p.sport : 0;
    const ihash = shBucket(fold, port, 0);
    const first = this.buckets[ihash];
    if (first < 0) return NO_DEST;
    if (d.usable(first)) return first;
    if (!this.fallback) return NO_DEST;
    for (let k = 0; k < SH_TAB_SIZE; k++) {
      const i = this.buckets[shBucket(fold, port, (k + ihash) & SH_TAB_MASK)];
      if (i < 0) return NO_DEST;
      if (d.usable(i)) return i;
    }
    return NO_DEST;
  }
}

export const sh: SchedulerFactory = (schedFlags) => new SourceHash(schedFlags);
