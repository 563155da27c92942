// GRO-style coalescing on write (wireguard-go's tun/offload does the same): consecutive
// UDP datagrams of one flow that a batch forwards are joined into one UDP super-packet
// (virtio GSO_UDP_L4) and written to the offloading TUN once; the kernel segments it
// again after routing, as it does for a sender using UDP_SEGMENT. Each write to a TUN
// costs a system call plus the stack's per-packet work up to the next device, so a flood
// of small datagrams costs fewer of them. Only datagrams that the segmentation gives back
// unchanged are joined: the same addresses, ports, TOS/traffic class, TTL/hop limit and DF,
// no IPv4 options or IPv6 extension headers, no fragments, all of one size but the last.
//
// Contract: the staging area is a region of the worker's frame (copyWithin only: no
// allocation); add() either takes the packet (the caller does not send it) or says no
// (the caller flushes, then sends it as usual); flush() before anything else is written,
// and at the end of every batch, so packets of a flow keep their order.
import { csumCompute } from "../wire/checksum.ts";
import { csumSetPartial } from "../wire/gso.ts";
import { put16, sameAddrsAndPorts } from "../wire/ip.ts";
import { IPPROTO_UDP } from "../wire/ipv4.ts";
import { VNET_F_NEEDS_CSUM, VNET_GSO_UDP_L4, VNET_HDR_LEN, vnetWrite, vnetWritePartial, vnetWritePlain } from "../wire/vnet.ts";
import { StagingSlots } from "./staging.ts";

/** Flows staged at once. */
export const COALESCE_SLOTS = 32;
/** Room per slot: a 64 KiB super-packet with the vnet header and some headroom in front. */
export const COALESCE_SLOT_BYTES = 64 + 65536;
/** The kernel segments at most this many datagrams from one super-packet (UDP_MAX_SEGMENTS). */
const MAX_SEGMENTS = 64;
const MAX_IP = 65535;

export class UdpCoalescer extends StagingSlots {
  /** Per slot: segment size, payload bytes, L4 offset, closed (a shorter last one came). */
  private readonly seg = new Int32Array(COALESCE_SLOTS);
  private readonly total = new Int32Array(COALESCE_SLOTS);
  private readonly l4off = new Int32Array(COALESCE_SLOTS);
  private readonly closed = new Uint8Array(COALESCE_SLOTS);
  /** The slot's first datagram left its checksum partial (sent as such when it stays alone). */
  private readonly partial = new Uint8Array(COALESCE_SLOTS);

  /**
   * `base`: the staging area's first byte in u8 (COALESCE_SLOTS × COALESCE_SLOT_BYTES).
   * `send(off, len)`: writes u8[off, off+len) (vnet header included) to the TUN.
   * `merged[at]` counts the super-packets written (more than one datagram each).
   */
  constructor(
    private readonly u8: Uint8Array, private readonly base: number, private readonly send: (off: number, len: number) => number,
    private readonly merged: Float64Array, private readonly at: number,
  ) {
    super(COALESCE_SLOTS);
  }

  /**
   * Takes the IP packet u8[start, start+len) if it can be joined or staged; false
   * otherwise. `partial`: its UDP checksum field holds the pseudo-header sum (NEEDS_CSUM).
   */
  add(start: number, len: number, partial: number): boolean {
    const u8 = this.u8;
    const v = u8[start] >> 4;
    let l4: number;
    if (v === 4) {
      if ((u8[start] & 0x0f) !== 5 || u8[start + 9] !== IPPROTO_UDP || (u8[start + 6] & 0x3f) !== 0 || u8[start + 7] !== 0) return false;
      l4 = 20;
    } else if (v === 6) {
      if (u8[start + 6] !== IPPROTO_UDP) return false;
      l4 = 40;
    } else return false;
    const payload = len - l4 - 8;
    if (payload <= 0) return false;
    for (let s = 0; s < COALESCE_SLOTS; s++) {
      if (this.count[s] === 0 || this.l4off[s] !== l4 || !this.sameFlow(s, start, v)) continue;
      const hdr = l4 + 8;
      if (this.closed[s] === 0 && payload <= this.seg[s] && hdr + this.total[s] + payload <= MAX_IP && this.count[s] < MAX_SEGMENTS) {
        const at = this.slotIp(s) + hdr + this.total[s];
        u8.copyWithin(at, start + hdr, start + len);
        this.total[s] += payload;
        this.count[s]++;
        if (payload < this.seg[s]) this.closed[s] = 1;
        return true;
      }
      this.write(s);
      this.stage(s, start, len, l4, payload, partial);
      return true;
    }
    this.stage(this.claim(), start, len, l4, payload, partial);
    return true;
  }

  /** Where slot s keeps its IP packet (its vnet header goes just in front). */
  private slotIp(s: number): number {
    return this.base + s * COALESCE_SLOT_BYTES + 64;
  }

  private stage(s: number, start: number, len: number, l4: number, payload: number, partial: number): void {
    this.u8.copyWithin(this.slotIp(s), start, start + len);
    this.take(s);
    this.seg[s] = payload;
    this.total[s] = payload;
    this.l4off[s] = l4;
    this.closed[s] = 0;
    this.partial[s] = partial;
  }

  /** Same addresses, ports, TOS/class, TTL/hop limit and DF as slot s's first datagram. */
  private sameFlow(s: number, start: number, v: number): boolean {
    const u8 = this.u8;
    const o = this.slotIp(s);
    if (v === 4) {
      if (u8[o + 1] !== u8[start + 1] || u8[o + 6] !== u8[start + 6] || u8[o + 8] !== u8[start + 8]) return false;
    } else {
      for (let i = 0; i < 4; i++) if (u8[o + i] !== u8[start + i]) return false;
      if (u8[o + 7] !== u8[start + 7]) return false;
    }
    return sameAddrsAndPorts(u8, o, start, v === 4);
  }

  protected write(s: number): void {
    const u8 = this.u8;
    const ip = this.slotIp(s);
    const l4 = this.l4off[s];
    const hdr = l4 + 8;
    const len = hdr + this.total[s];
    const h = ip - VNET_HDR_LEN;
    if (this.count[s] === 1) {
      if (this.partial[s] === 0) vnetWritePlain(u8, h);
      else vnetWritePartial(u8, h, l4, 6);
    } else {
      const udpLen = len - l4;
      if (l4 === 20) {
        put16(u8, ip + 2, len);
        put16(u8, ip + 10, 0);
        put16(u8, ip + 10, csumCompute(u8, ip, 20));
      } else put16(u8, ip + 4, len - 40);
      put16(u8, ip + l4 + 4, udpLen);
      // The kernel's segmentation sums each datagram; the field holds the pseudo-header sum.
      csumSetPartial(u8, ip, ip + l4, ip + len, ip + l4 + 6, IPPROTO_UDP);
      vnetWrite(u8, h, VNET_F_NEEDS_CSUM, VNET_GSO_UDP_L4, hdr, this.seg[s], l4, 6);
      this.merged[this.at]++;
    }
    this.send(h, len + VNET_HDR_LEN);
    this.release(s);
  }
}
