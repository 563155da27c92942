// The real server's half of tunnel mode: from a datagram read off a raw or GUE socket, find
// the inner packet, check it is a whole IPv4/IPv6 packet addressed to one of this host's
// VIPs, and say where it is, so the caller writes exactly those bytes into the local TUN
// (the kernel's ipip / sit / ip6_tunnel / gre / fou receive paths, in userspace).
//
// Contract: pure per-packet code. Decapper.fromIp4 / fromPayload return the inner
// packet's start (>= 0; its length is in `innerLen`) or -DecapDrop; they never allocate
// or throw. The only change they make to the bytes is the one the kernel makes: ECN
// decapsulation (RFC 6040: CE on the outer header marks an ECT inner packet CE) and
// completing a GUE remote checksum. The VIP set is replaced, never edited, between batches.
import { csumReplace16 } from "../wire/checksum.ts";
import { ETH_P_IP, ETH_P_IPV6, IPPROTO_GRE, greCheck, greHeaderLen, greProto } from "../wire/gre.ts";
import { IPPROTO_IPIP, IPPROTO_IPV6, gueCheck, gueControl, gueHeaderLen, gueProto, gueRemcsumApply, gueRemcsumAt } from "../wire/gue.ts";
import { IPPROTO_UDP, ipv4Check } from "../wire/ipv4.ts";
import { IPV6_HDR_LEN, ipv6Check } from "../wire/ipv6.ts";

/** Why a tunnel packet was not injected. 0 is unused so that -reason is always negative. */
export const DECAP_DROP = {
  /** Inner destination is not one of this host's VIPs. */
  NOT_VIP: 1,
  /** Outer or inner header truncated or inconsistent, bad inner IPv4 checksum, bad GRE/GUE header. */
  MALFORMED: 2,
  /** GUE control message, or a GUE proto / GRE protocol type other than IPv4/IPv6, or a payload whose IP version disagrees. */
  UNKNOWN_PROTO: 3,
  /** Outer CE over a not-ECT inner packet (RFC 6040 §4.2: must be dropped). */
  ECN: 4,
  /** Writing into the TUN failed. */
  TX_ERROR: 5,
} as const;
export const DECAP_DROP_NAMES: readonly string[] = ["none", "not_vip", "malformed", "unknown_proto", "ecn", "tx_error"];
export const DECAP_DROP_COUNT = DECAP_DROP_NAMES.length;

/** The payload kinds a datagram can carry, as Decapper.fromPayload's `proto`. */
export const PAYLOAD_IPIP = IPPROTO_IPIP;
export const PAYLOAD_IPV6 = IPPROTO_IPV6;
export const PAYLOAD_GRE = IPPROTO_GRE;
/** A GUE UDP payload (what a UDP socket reads). */
export const PAYLOAD_GUE = IPPROTO_UDP;

/**
 * The host's VIPs: IPv4 addresses as int32 and IPv6 addresses as 4 int32 words each.
 * Linear scan: a real server carries a handful of VIPs (at 64 VIPs a miss costs ~64
 * compares, still below the recv syscall by two orders of magnitude).
 */
export class VipSet {
  readonly v4: Int32Array;
  readonly v6: Int32Array;
  constructor(v4: readonly number[], v6: readonly (readonly number[])[]) {
    this.v4 = Int32Array.from(v4, (x) => x | 0);
    this.v6 = new Int32Array(v6.length * 4);
    for (let i = 0; i < v6.length; i++) for (let w = 0; w < 4; w++) this.v6[4 * i + w] = v6[i][w] | 0;
  }
  get size(): number {
    return this.v4.length + (this.v6.length >> 2);
  }
  has4(addr: number): boolean {
    const v = this.v4;
    for (let i = 0; i < v.length; i++) if (v[i] === addr) return true;
    return false;
  }
  has6(a0: number, a1: number, a2: number, a3: number): boolean {
    const v = this.v6;
    for (let i = 0; i < v.length; i += 4) {
      if (v[i] === a0 && v[i + 1] === a1 && v[i + 2] === a2 && v[i + 3] === a3) return true;
    }
    return false;
  }
}

function rd32(u8: Uint8Array, o: number): number {
  return (u8[o] << 24) | (u8[o + 1] << 16) | (u8[o + 2] << 8) | u8[o + 3];
}

export class Decapper {
  /** Length of the inner packet found by the last successful call. */
  innerLen = 0;
  /** Outer protocol of the last datagram (4, 41, 47, or 17 for GUE): what the counters split by. */
  outerProto = 0;

  constructor(public vips: VipSet) {}

  /**
   * A datagram from an AF_INET raw socket: outer IPv4 header at `o`, `n` bytes. Applies
   * ECN decapsulation from the outer TOS. Returns the inner start or -DecapDrop.
   */
  fromIp4(u8: Uint8Array, o: number, n: number): number {
    if (ipv4Check(u8, o, n) !== 0) return -DECAP_DROP.MALFORMED;
    const ihl = (u8[o] & 0x0f) << 2;
    const total = (u8[o + 2] << 8) | u8[o + 3];
    return this.fromPayload(u8, o + ihl, total - ihl, u8[o + 9], u8[o + 1] & 3);
  }

  /**
   * The payload of an outer header of protocol `proto` (PAYLOAD_IPIP / IPV6 / GRE) at
   * [o, o+n), or a GUE UDP payload (PAYLOAD_GUE). `outerEcn` is the outer header's ECN
   * field, or 0 when unknown (IPv6 raw and UDP sockets do not show the outer header).
   */
  fromPayload(u8: Uint8Array, o: number, n: number, proto: number, outerEcn: number): number {
    this.outerProto = proto;
    let inner = proto;
    let at = o;
    let avail = n;
    let remcsum = -1;
    if (proto === IPPROTO_GRE) {
      if (greCheck(u8, o, n) !== 0) return -DECAP_DROP.MALFORMED;
      const ptype = greProto(u8, o);
      if (ptype === ETH_P_IP) inner = IPPROTO_IPIP;
      else if (ptype === ETH_P_IPV6) inner = IPPROTO_IPV6;
      else return -DECAP_DROP.UNKNOWN_PROTO;
      const hl = greHeaderLen(u8, o);
      at = o + hl;
      avail = n - hl;
    } else if (proto === IPPROTO_UDP) {
      if (gueCheck(u8, o, n) !== 0) return -DECAP_DROP.MALFORMED;
      const hl = gueHeaderLen(u8, o);
      if (hl > 0 && gueControl(u8, o)) return -DECAP_DROP.UNKNOWN_PROTO;
      inner = gueProto(u8, o);
      if (inner !== IPPROTO_IPIP && inner !== IPPROTO_IPV6) return -DECAP_DROP.UNKNOWN_PROTO;
      const r = gueRemcsumAt(u8, o);
      if (r >= 0) remcsum = o + r;
      at = o + hl;
      avail = n - hl;
    } else if (proto !== IPPROTO_IPIP && proto !== IPPROTO_IPV6) {
      return -DECAP_DROP.UNKNOWN_PROTO;
    }
    if (avail < 1) return -DECAP_DROP.MALFORMED;
    const ver = u8[at] >> 4;
    let len = 0;
    if (inner === IPPROTO_IPIP) {
      if (ver !== 4) return -DECAP_DROP.UNKNOWN_PROTO;
      if (ipv4Check(u8, at, avail) !== 0) return -DECAP_DROP.MALFORMED;
      len = (u8[at + 2] << 8) | u8[at + 3];
      if (!this.vips.has4(rd32(u8, at + 16))) return -DECAP_DROP.NOT_VIP;
      if (outerEcn === 3) {
        const ecn = u8[at + 1] & 3;
        if (ecn === 0) return -DECAP_DROP.ECN;
        if (ecn !== 3) {
          // Mark CE and patch the header checksum for the first 16-bit word (RFC 1624).
          const old = (u8[at] << 8) | u8[at + 1];
          u8[at + 1] |= 3;
          const c = csumReplace16((u8[at + 10] << 8) | u8[at + 11], old, old | 3);
          u8[at + 10] = c >>> 8;
          u8[at + 11] = c & 0xff;
        }
      }
    } else {
      if (ver !== 6) return -DECAP_DROP.UNKNOWN_PROTO;
      if (ipv6Check(u8, at, avail) !== 0) return -DECAP_DROP.MALFORMED;
      len = IPV6_HDR_LEN + ((u8[at + 4] << 8) | u8[at + 5]);
      if (!this.vips.has6(rd32(u8, at + 24), rd32(u8, at + 28), rd32(u8, at + 32), rd32(u8, at + 36))) {
        return -DECAP_DROP.NOT_VIP;
      }
      if (outerEcn === 3) {
        const ecn = (u8[at + 1] >> 4) & 3;
        if (ecn === 0) return -DECAP_DROP.ECN;
        u8[at + 1] |= 0x30;
      }
    }
    if (remcsum >= 0 && gueRemcsumApply(u8, remcsum, at, len) !== 0) return -DECAP_DROP.MALFORMED;
    this.innerLen = len;
    return at;
  }
}
