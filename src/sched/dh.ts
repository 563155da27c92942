// dh — destination hashing (ip_vs_dh.c). A 256-bucket table built in rebuild(): bucket
// i holds the destination at list position i mod n (weights ignored). Key: the packet's
// destination address, IPv6 folded by XOR of its four words (IPv4 leaves words 1–3 at 0,
// so the same XOR serves both). Bucket = hash_32(ntohl(fold), 8), the current kernel's
// hash (include/linux/hash.h: (x * 0x61C88647 mod 2^32) >> 24). Kernels before the
// hash_32 conversion used the low 8 bits of x * 2654435761 instead (the formula the
// ipvs-semantics reference §3.11 quotes); `dhBucketLegacy` keeps it for comparison.
// The chosen destination is used only if available, weight > 0 and not OVERLOAD;
// otherwise no destination (dh has no fallback). dh is not consistent hashing: deleting
// a destination re-deals i mod n for most buckets, exactly as the kernel does.
// schedule(): one multiply and one table read; no allocation.
import type { Pkt } from "../wire/pkt.ts";
import { DestSet, NO_DEST, type Scheduler, type SchedulerFactory } from "./scheduler.ts";

export const DH_TAB_BITS = 8;
export const DH_TAB_SIZE = 1 << DH_TAB_BITS;
/** GOLDEN_RATIO_32 of include/linux/hash.h. */
const GOLDEN_RATIO_32 = 0x61c88647;

/** Bucket of a folded address (host-order int32 word), current kernels. */
export function dhBucket(fold: number): number {
  return Math.imul(fold, GOLDEN_RATIO_32) >>> (32 - DH_TAB_BITS);
}

/** Bucket of a folded address in pre-hash_32 kernels: (x * 2654435761) & 255. */
export function dhBucketLegacy(fold: number): number {
  return Math.imul(fold, 0x9e3779b1) & (DH_TAB_SIZE - 1);
}

export class DestinationHash implements Scheduler {
  readonly name = "dh";
  /** Bucket → destination index in the DestSet of the last rebuild; -1 = empty. */
  readonly buckets = new Int32Array(DH_TAB_SIZE).fill(-1);

  rebuild(d: DestSet): void {
    const n = d.count;
    for (let b = 0; b < DH_TAB_SIZE; b++) this.buckets[b] = n === 0 ? -1 : b % n;
  }

  schedule(d: DestSet, p: Pkt): number {
    const i = this.buckets[dhBucket(p.dst0 ^ p.dst1 ^ p.dst2 ^ p.dst3)];
    return i >= 0 && d.usable(i) ? i : NO_DEST;
  }
}

export const dh: SchedulerFactory = () => new DestinationHash();
