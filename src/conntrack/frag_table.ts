// Which connection a fragmented datagram belongs to. Only the first fragment carries the
// ports, so when it is forwarded its (family, protocol, source, destination, fragment id)
// is remembered with the connection id and direction; later fragments of the same
// datagram look that up and go the same way (Maglev §4.3.2 does the same). A fragment
// whose datagram is unknown — it came before its first fragment, or the entry was
// overwritten — is dropped and counted, never guessed. Direct-mapped typed arrays: a
// collision replaces the older datagram. Allocation-free after construction.
import type { Pkt } from "../wire/pkt.ts";

/** Slots (power of two): datagrams in flight at once, across all flows. */
const SLOTS = 4096;
/** Seconds a first fragment's mapping is kept (the IPv4 reassembly timeout is 30 s). */
export const FRAG_TIMEOUT_SEC = 30;
const WORDS = 12; // proto|af, id, src ×4, dst ×4, conn, expires

export class FragTable {
  private readonly w = new Int32Array(SLOTS * WORDS);
  private readonly dirs = new Uint8Array(SLOTS);

  private static hash(p: Pkt): number {
    let h = Math.imul(p.fragId ^ (p.proto << 8) ^ p.ipv, 0x9e3779b1);
    h = Math.imul(h ^ p.src0 ^ p.src3, 0x85ebca6b);
    h = Math.imul(h ^ p.dst0 ^ p.dst3, 0xc2b2ae35);
    return (h >>> 20) & (SLOTS - 1);
  }

  private matches(b: number, p: Pkt): boolean {
    const w = this.w;
    return w[b] === ((p.proto << 8) | p.ipv) && w[b + 1] === p.fragId &&
      w[b + 2] === p.src0 && w[b + 3] === p.src1 && w[b + 4] === p.src2 && w[b + 5] === p.src3 &&
      w[b + 6] === p.dst0 && w[b + 7] === p.dst1 && w[b + 8] === p.dst2 && w[b + 9] === p.dst3;
  }

  /** Remembers that the datagram of first fragment `p` belongs to connection `id`, direction `dir`. */
  put(p: Pkt, id: number, dir: number, now: number): void {
    const i = FragTable.hash(p);
    const b = i * WORDS;
    const w = this.w;
    w[b] = (p.proto << 8) | p.ipv;
    w[b + 1] = p.fragId;
    w[b + 2] = p.src0; w[b + 3] = p.src1; w[b + 4] = p.src2; w[b + 5] = p.src3;
    w[b + 6] = p.dst0; w[b + 7] = p.dst1; w[b + 8] = p.dst2; w[b + 9] = p.dst3;
    w[b + 10] = id;
    w[b + 11] = now + FRAG_TIMEOUT_SEC;
    this.dirs[i] = dir;
  }

  /** The connection id of later fragment `p` (sets p.dir), or -1 when its datagram is unknown. */
  get(p: Pkt, now: number): number {
    const i = FragTable.hash(p);
    const b = i * WORDS;
    if (this.w[b + 11] <= now || !this.matches(b, p)) return -1;
    p.dir = this.dirs[i];
    return this.w[b + 10];
  }
}
