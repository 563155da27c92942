// Learnt next hops for the XDP hand-off (dataplane/xdp_path.ts): IPv4 address → the
// socket (interface) and MAC its frames came from. A cache: an open-addressed table with
// a short probe, overwritten on collision; a lost or stale entry only sends a packet
// through the TUN, where the kernel resolves the way itself.
//
// An entry not heard from for HOP_TTL_MS is not used: a host that moved to another MAC
// costs at most that long, as a stale ARP entry would.
const SLOTS = 1 << 16;
const PROBES = 8;
export const HOP_TTL_MS = 5000;

export class NextHops {
  /** [address, socket index + 1 (0: empty), MAC high 16 bits, MAC low 32 bits] per slot. */
  private readonly e = new Int32Array(SLOTS * 4);
  /** When each slot was last heard from (ms). */
  private readonly heard = new Float64Array(SLOTS);

  learn(address: number, sock: number, macHi: number, macLo: number, nowMs: number): void {
    const addr = address | 0;
    const e = this.e;
    const home = (Math.imul(addr, 0x9e3779b1) >>> 16) & (SLOTS - 1);
    let at = home;
    for (let k = 0; k < PROBES; k++) {
      const s = (home + k) & (SLOTS - 1);
      if (e[(s << 2) + 1] === 0 || e[s << 2] === addr) { at = s; break; }
    }
    const o = at << 2;
    e[o] = addr; e[o + 1] = sock + 1; e[o + 2] = macHi; e[o + 3] = macLo;
    this.heard[at] = nowMs;
  }

  /** The slot of `addr`'s next hop, heard from within HOP_TTL_MS, or -1. */
  find(address: number, nowMs: number): number {
    const addr = address | 0;
    const e = this.e;
    const home = (Math.imul(addr, 0x9e3779b1) >>> 16) & (SLOTS - 1);
    for (let k = 0; k < PROBES; k++) {
      const s = (home + k) & (SLOTS - 1);
      if (e[(s << 2) + 1] === 0) return -1;
      if (e[s << 2] === addr) return nowMs - this.heard[s] < HOP_TTL_MS ? s : -1;
    }
    return -1;
  }

  sock(slot: number): number {
    return this.e[(slot << 2) + 1] - 1;
  }
  macHi(slot: number): number {
    return this.e[(slot << 2) + 2];
  }
  macLo(slot: number): number {
    return this.e[(slot << 2) + 3];
  }
}
