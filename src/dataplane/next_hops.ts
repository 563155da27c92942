// Learnt next hops for the XDP hand-off (dataplane/xdp_path.ts): an address (IPv4 as
// [addr, 0, 0, 0], IPv6 as its 4 words; one table per family) → the socket (interface) and
// MAC its frames came from. A cache: an open-addressed table with a short probe,
// overwritten on collision; a lost or stale entry only sends a packet through the TUN,
// where the kernel resolves the way itself.
//
// An entry not heard from for HOP_TTL_MS is not used: a host that moved to another MAC
// costs at most that long, as a stale ARP entry would.
const PROBES = 8;
export const HOP_TTL_MS = 5000;
/** Int32 words per slot: the address (4), socket index + 1 (0: empty), MAC high 16 bits, MAC low 32 bits, spare. */
const W = 8;

export class NextHops {
  private readonly e: Int32Array;
  /** When each slot was last heard from (ms). */
  private readonly heard: Float64Array;
  private readonly mask: number;

  constructor(slots = 1 << 16) {
    this.e = new Int32Array(slots * W);
    this.heard = new Float64Array(slots);
    this.mask = slots - 1;
  }

  private home(a0: number, a1: number, a2: number, a3: number): number {
    return (Math.imul(a0 ^ Math.imul(a1, 0x85ebca6b) ^ Math.imul(a2, 0xc2b2ae35) ^ Math.imul(a3, 0x27d4eb2f), 0x9e3779b1) >>> 16) & this.mask;
  }

  private is(s: number, a0: number, a1: number, a2: number, a3: number): boolean {
    const e = this.e;
    const o = s * W;
    return e[o] === a0 && e[o + 1] === a1 && e[o + 2] === a2 && e[o + 3] === a3;
  }

  learn(a0: number, a1: number, a2: number, a3: number, sock: number, macHi: number, macLo: number, nowMs: number): void {
    a0 |= 0; a1 |= 0; a2 |= 0; a3 |= 0;
    const e = this.e;
    const home = this.home(a0, a1, a2, a3);
    let at = home;
    for (let k = 0; k < PROBES; k++) {
      const s = (home + k) & this.mask;
      if (e[s * W + 4] === 0 || this.is(s, a0, a1, a2, a3)) { at = s; break; }
    }
    const o = at * W;
    e[o] = a0; e[o + 1] = a1; e[o + 2] = a2; e[o + 3] = a3;
    e[o + 4] = sock + 1; e[o + 5] = macHi; e[o + 6] = macLo;
    this.heard[at] = nowMs;
  }

  /** The slot of the address's next hop, heard from within HOP_TTL_MS, or -1. */
  find(a0: number, a1: number, a2: number, a3: number, nowMs: number): number {
    a0 |= 0; a1 |= 0; a2 |= 0; a3 |= 0;
    const home = this.home(a0, a1, a2, a3);
    for (let k = 0; k < PROBES; k++) {
      const s = (home + k) & this.mask;
      if (this.e[s * W + 4] === 0) return -1;
      if (this.is(s, a0, a1, a2, a3)) return nowMs - this.heard[s] < HOP_TTL_MS ? s : -1;
    }
    return -1;
  }

  sock(slot: number): number {
    return this.e[slot * W + 4] - 1;
  }
  macHi(slot: number): number {
    return this.e[slot * W + 5];
  }
  macLo(slot: number): number {
    return this.e[slot * W + 6];
  }
}
