// Tunnel encapsulation ("Tunnel", -i; ip_vs_tunnel_xmit / ip_vs_tunnel_xmit_v6): writes
// the outer header(s) IN FRONT of the inner packet, in the frame's headroom, so the
// packet itself is never copied (Katran encap_v4, wireguard-go offset).
//
// Contract:
// - The inner packet is frame[start, start+len): a whole IPv4 or IPv6 packet, already
//   rewritten as the caller needs (TTL decremented, inner checksum correct).
// - The caller guarantees `tunnelOverhead(d)` free bytes before `start` (HEADROOM = 64
//   covers the largest case: IPv6 + UDP + GUE with the remote checksum option = 60).
// - tunnelEncap returns the new start (the outer header; the packet is now
//   frame[newStart, start+len)) or a negative DropReason. No allocation, no throw.
// - Outer fields as IPVS sets them (reference §5.4): TOS/traffic class copied from the
//   inner packet with ECN per RFC 6040 (INET_ECN_encapsulate: CE becomes ECT(0)), TTL/hop
//   limit copied from the inner packet, DF copied from an inner IPv4 packet (pmtu_disc=1;
//   IPv6 inner: DF 0), IP ID from the caller's per-worker counter, source and destination
//   from the TunnelDest (source: the address the kernel would use toward the real server).
// - GUE: UDP source port from the inner flow hash over the ephemeral range, as Linux's
//   udp_flow_src_port; UDP checksum 0 unless TUN_F_CSUM or TUN_F_REMCSUM (then a full
//   checksum; 0 becomes 0xffff). Packets read from a TUN carry complete checksums
//   (never CHECKSUM_PARTIAL), so, as in IPVS for such packets, TUN_F_REMCSUM adds no
//   remote-checksum option: it only turns the UDP checksum on. Outer checksums cost O(1)
//   for TCP/UDP inner packets (see innerSum).
// - GRE: base header with protocol 0x0800/0x86DD; TUN_F_CSUM adds the checksum word.
import { csumAdd, csumFold, ipv4PseudoSum } from "../wire/checksum.ts";
import { DROP } from "../wire/drop.ts";
import type { Frame } from "../wire/frame.ts";
import { ETH_P_IP, ETH_P_IPV6, GRE_CSUM_HDR_LEN, GRE_HDR_LEN, IPPROTO_GRE, greHeaderLen, greWrite, greWriteCsumSum } from "../wire/gre.ts";
import { GUE_HDR_LEN, IPPROTO_IPIP, IPPROTO_IPV6, gueWrite } from "../wire/gue.ts";
import { IPPROTO_TCP, IPPROTO_UDP, IPV4_DF, IPV4_MIN_LEN } from "../wire/ipv4.ts";
import { IPV6_HDR_LEN } from "../wire/ipv6.ts";
import { UDP_HDR_LEN } from "../wire/udp.ts";

/** Tunnel types, numbered as IPVS's IP_VS_CONN_F_TUNNEL_TYPE_* (ipvsadm --tun-type). */
export const TUN_IPIP = 0;
export const TUN_GUE = 1;
export const TUN_GRE = 2;
/** Encapsulation flags, as IPVS's IP_VS_TUNNEL_ENCAP_FLAG_* (--tun-csum, --tun-remcsum). */
export const TUN_F_CSUM = 1;
export const TUN_F_REMCSUM = 2;

/** Linux's default ip_local_port_range: GUE source ports are drawn from [MIN, MAX). */
export const GUE_SPORT_MIN = 32768;
export const GUE_SPORT_MAX = 60999;

/** IPv4 and IPv6 minimum link MTUs (RFC 791, RFC 8200 §5): IPVS drops below them. */
export const IPV4_MIN_MTU = 68;
export const IPV6_MIN_MTU = 1280;

/**
 * Where and how one real server is reached through a tunnel. Plain data (survives
 * postMessage); build it with tunnelDest() so every instance has the same shape.
 * Addresses are int32 words in network bit order (wire/addr.ts); IPv4 uses word 0.
 */
export interface TunnelDest {
  /** Family of the OUTER header: the real server's address family (4 or 6). */
  af: number;
  /** TUN_IPIP, TUN_GUE or TUN_GRE. */
  type: number;
  /** TUN_F_CSUM | TUN_F_REMCSUM bits. */
  flags: number;
  /** GUE destination port (--tun-port); unused for IPIP and GRE. */
  port: number;
  src0: number; src1: number; src2: number; src3: number;
  dst0: number; dst1: number; dst2: number; dst3: number;
}

/** A TunnelDest with a stable shape. `src`/`dst`: 1 word (IPv4) or 4 words (IPv6). Control plane only. */
export function tunnelDest(af: number, type: number, flags: number, port: number, src: readonly number[], dst: readonly number[]): TunnelDest {
  const want = af === 4 ? 1 : 4;
  if ((af !== 4 && af !== 6) || src.length !== want || dst.length !== want) {
    throw new RangeError(`tunnelDest: af ${af} needs ${want}-word addresses, got ${src.length} and ${dst.length}`);
  }
  if (type !== TUN_IPIP && type !== TUN_GUE && type !== TUN_GRE) throw new RangeError(`tunnelDest: unknown tunnel type ${type}`);
  const w = (a: readonly number[], i: number) => (i < a.length ? a[i] | 0 : 0);
  return {
    af, type, flags, port,
    src0: w(src, 0), src1: w(src, 1), src2: w(src, 2), src3: w(src, 3),
    dst0: w(dst, 0), dst1: w(dst, 1), dst2: w(dst, 2), dst3: w(dst, 3),
  };
}

/** Bytes written in front of the inner packet: outer IP header + UDP/GUE or GRE header. */
export function tunnelOverhead(d: TunnelDest): number {
  const ip = d.af === 4 ? IPV4_MIN_LEN : IPV6_HDR_LEN;
  if (d.type === TUN_GUE) return ip + UDP_HDR_LEN + GUE_HDR_LEN;
  if (d.type === TUN_GRE) return ip + ((d.flags & TUN_F_CSUM) !== 0 ? GRE_CSUM_HDR_LEN : GRE_HDR_LEN);
  return ip;
}

/**
 * MTU left for the inner packet on a route of `routeMtu` bytes toward the real server
 * (IPVS __ip_vs_get_out_rt with IP_VS_RT_MODE_TUNNEL), or -1 when that is below the
 * outer family's minimum MTU (68 / 1280): IPVS then drops the packet.
 */
export function tunnelInnerMtu(routeMtu: number, d: TunnelDest): number {
  const mtu = routeMtu - tunnelOverhead(d);
  return mtu < (d.af === 4 ? IPV4_MIN_MTU : IPV6_MIN_MTU) ? -1 : mtu;
}

/**
 * IPVS ensure_mtu_is_adequate for a tunnelled packet: 0 when the inner packet at
 * u8[start, start+len) may be sent (it fits, or it is IPv4 without DF and the outer
 * packet may be fragmented), else the MTU to report to the sender: ICMP fragmentation
 * needed (IPv4 with DF) or ICMPv6 packet too big (IPv6); drop the packet. The caller
 * skips the check for ICMP errors it forwards (IPVS never answers ICMP with ICMP).
 */
export function tunnelMtuCheck(u8: Uint8Array, start: number, len: number, innerMtu: number): number {
  if (len <= innerMtu) return 0;
  if (u8[start] >> 4 === 4 && (u8[start + 6] & (IPV4_DF >>> 8)) === 0) return 0;
  return innerMtu;
}

/**
 * For an ICMP error about one of the director's own tunnel packets (reference §5.5, IPVS
 * ip_vs_in_icmp "errors for IPIP/UDP/GRE tunnel packets"): `q` is the offset of the quoted
 * outer IPv4 header inside the ICMP message and `qlen` the bytes quoted. Returns the offset
 * of the client's original IPv4 header inside the quote, or -1 when the quote is not an
 * IPv4 tunnel packet of ours: IPIP (protocol 4); GUE to `guePort` (-1: any port) with a
 * version-0 data header carrying protocol 4; GRE version 0 carrying 0x0800 (its checksum
 * cannot be checked on a truncated quote). A non-first fragment, or fewer than 20 quoted
 * bytes of the inner header, gives -1 (IPVS ignores those too). The tunnel overhead to
 * take off a "fragmentation needed" MTU is (result - q): see tunnelIcmpMtu.
 */
export function tunnelIcmpInner(u8: Uint8Array, q: number, qlen: number, guePort: number): number {
  const i = tunnelQuotedInner(u8, q, qlen, 4, guePort);
  return i >= 0 && u8[i] >> 4 === 4 ? i : -1;
}

/**
 * The general form of tunnelIcmpInner: the quote at `q` is an outer IPv4 (`outerAf` 4) or
 * IPv6 header of one of our tunnel packets (IPIP / IPv6-in-IP, GUE to `guePort` (-1: any),
 * GRE); returns the offset of the client's packet inside it, IPv4 or IPv6 (its version
 * nibble tells), with at least its fixed header quoted; -1 when the quote is anything else.
 */
export function tunnelQuotedInner(u8: Uint8Array, q: number, qlen: number, outerAf: number, guePort: number): number {
  const end = q + qlen;
  let proto: number;
  let inner: number;
  if (outerAf === 4) {
    if (qlen < IPV4_MIN_LEN || u8[q] >> 4 !== 4) return -1;
    const ihl = (u8[q] & 0x0f) << 2;
    if (ihl < IPV4_MIN_LEN || (((u8[q + 6] & 0x1f) << 8) | u8[q + 7]) !== 0) return -1;
    proto = u8[q + 9];
    inner = q + ihl;
  } else {
    if (qlen < IPV6_HDR_LEN || u8[q] >> 4 !== 6) return -1;
    proto = u8[q + 6]; // our own packets carry no extension headers
    inner = q + IPV6_HDR_LEN;
  }
  if (proto === IPPROTO_UDP) {
    const g = inner + UDP_HDR_LEN;
    if (g + GUE_HDR_LEN > end) return -1;
    if (guePort >= 0 && ((u8[inner + 2] << 8) | u8[inner + 3]) !== guePort) return -1;
    // Version 0, data (C = 0), payload protocol 4 or 41; options skipped by Hlen.
    if ((u8[g] & 0xe0) !== 0 || (u8[g + 1] !== IPPROTO_IPIP && u8[g + 1] !== IPPROTO_IPV6)) return -1;
    inner = g + GUE_HDR_LEN + ((u8[g] & 0x1f) << 2);
  } else if (proto === IPPROTO_GRE) {
    if (inner + GRE_HDR_LEN > end) return -1;
    if ((u8[inner] & 0x40) !== 0 || (u8[inner + 1] & 0x07) !== 0) return -1; // routing, version
    const ptype = (u8[inner + 2] << 8) | u8[inner + 3];
    if (ptype !== ETH_P_IP && ptype !== ETH_P_IPV6) return -1;
    inner += greHeaderLen(u8, inner);
  } else if (proto !== IPPROTO_IPIP && proto !== IPPROTO_IPV6) {
    return -1;
  }
  if (inner >= end) return -1;
  const v = u8[inner] >> 4;
  if (v === 4) return inner + IPV4_MIN_LEN <= end && (u8[inner] & 0x0f) >= 5 ? inner : -1;
  if (v === 6) return inner + IPV6_HDR_LEN <= end ? inner : -1;
  return -1;
}

/**
 * The MTU to tell the client in a "fragmentation needed" translated from one about the
 * tunnel packet: the path MTU toward the real server less the tunnel overhead (outer
 * header + UDP/GUE or GRE), unless that would go below 68 (IPVS keeps the MTU then).
 */
export function tunnelIcmpMtu(pathMtu: number, overhead: number): number {
  return pathMtu > IPV4_MIN_MTU + overhead ? pathMtu - overhead : pathMtu;
}

/** Linux udp_flow_src_port with the default range: a per-flow port in [32768, 60999). */
export function gueSourcePort(hash: number): number {
  const h = (hash ^ (hash << 16)) >>> 0;
  // h * range < 2^47: exact in a double, no BigInt.
  return Math.floor((h * (GUE_SPORT_MAX - GUE_SPORT_MIN)) / 4294967296) + GUE_SPORT_MIN;
}

/**
 * Encapsulates frame[start, start+len) for real server `d`. `ipId` is the outer IPv4
 * identification (the caller's per-worker counter; unused for an IPv6 outer header),
 * `hash` the inner flow hash (GUE source port). Returns the new start or -DropReason:
 * UNSUPPORTED_L3 (inner is neither IPv4 nor IPv6), TUNNEL_TOO_BIG (outer length past
 * 65535, or start < overhead).
 */
export function tunnelEncap(f: Frame, start: number, len: number, d: TunnelDest, ipId: number, hash: number): number {
  const u8 = f.u8;
  const oh = tunnelOverhead(d);
  if (start < oh || len < 1) return -DROP.TUNNEL_TOO_BIG;
  // Inner family decides the payload protocol; TOS, TTL and DF come from the inner header.
  const ver = u8[start] >> 4;
  let inner = 0;
  let tos = 0;
  let ttl = 0;
  let df = 0;
  if (ver === 4) {
    inner = IPPROTO_IPIP;
    tos = u8[start + 1];
    ttl = u8[start + 8];
    df = u8[start + 6] & (IPV4_DF >>> 8);
  } else if (ver === 6) {
    inner = IPPROTO_IPV6;
    tos = ((u8[start] & 0x0f) << 4) | (u8[start + 1] >> 4);
    ttl = u8[start + 7];
  } else {
    return -DROP.UNSUPPORTED_L3;
  }
  // RFC 6040 normal mode (INET_ECN_encapsulate): copy ECN, except CE is sent as ECT(0).
  if ((tos & 3) === 3) tos = (tos & 0xfc) | 2;
  const ipLen = d.af === 4 ? IPV4_MIN_LEN : IPV6_HDR_LEN;
  const outerLen = len + oh;
  if (outerLen - (d.af === 4 ? 0 : IPV6_HDR_LEN) > 0xffff) return -DROP.TUNNEL_TOO_BIG;
  const hdr = start - oh;
  const l4 = hdr + ipLen;
  let proto = inner;
  if (d.type === TUN_GUE) {
    proto = IPPROTO_UDP;
    const udpLen = outerLen - ipLen;
    const sport = gueSourcePort(hash);
    u8[l4] = sport >>> 8;
    u8[l4 + 1] = sport & 0xff;
    u8[l4 + 2] = d.port >>> 8;
    u8[l4 + 3] = d.port & 0xff;
    u8[l4 + 4] = udpLen >>> 8;
    u8[l4 + 5] = udpLen & 0xff;
    u8[l4 + 6] = 0;
    u8[l4 + 7] = 0;
    gueWrite(u8, l4 + UDP_HDR_LEN, inner);
    if ((d.flags & (TUN_F_CSUM | TUN_F_REMCSUM)) !== 0) {
      const hdrs = csumAdd(u8, l4, UDP_HDR_LEN + GUE_HDR_LEN, pseudoSum(d, IPPROTO_UDP, udpLen));
      let c = ~csumFold(hdrs + innerSum(u8, start, len)) & 0xffff;
      if (c === 0) c = 0xffff;
      u8[l4 + 6] = c >>> 8;
      u8[l4 + 7] = c & 0xff;
    }
  } else if (d.type === TUN_GRE) {
    proto = IPPROTO_GRE;
    const ptype = inner === IPPROTO_IPIP ? ETH_P_IP : ETH_P_IPV6;
    if ((d.flags & TUN_F_CSUM) !== 0) greWriteCsumSum(u8, l4, ptype, innerSum(u8, start, len));
    else greWrite(u8, l4, ptype);
  }
  if (d.af === 4) writeOuter4(u8, hdr, outerLen, tos, df, ttl, proto, ipId, d);
  else writeOuter6(u8, hdr, outerLen - IPV6_HDR_LEN, tos, ttl, proto, d);
  return hdr;
}

/**
 * One's-complement sum of the inner packet u8[start, start+len), in O(1) when its own
 * checksums vouch for it: a valid IPv4 header sums to 0xffff (one's-complement zero), and
 * a TCP/UDP segment with a valid checksum sums to the complement of its pseudo-header sum
 * (RFC 1071 §1; Linux's lco_csum relies on the same identity). So the outer UDP/GRE
 * checksum costs ~nothing instead of a pass over up to 64 KiB. If the inner checksum was
 * wrong, the outer checksum is wrong too and the receiver drops the packet at the outer
 * layer instead of the inner one: the same outcome. Anything else (fragments, UDP without
 * checksum, ICMP, IPv6 extension headers) is summed in full. Result < 2^20, unfolded.
 */
function innerSum(u8: Uint8Array, start: number, len: number): number {
  if (u8[start] >> 4 === 4) {
    const ihl = (u8[start] & 0x0f) << 2;
    const proto = u8[start + 9];
    const frag = ((u8[start + 6] & 0x3f) << 8) | u8[start + 7]; // MF bit and offset
    const total = (u8[start + 2] << 8) | u8[start + 3];
    if (frag === 0 && total === len && ihl >= IPV4_MIN_LEN && ihl <= len &&
      (proto === IPPROTO_TCP || (proto === IPPROTO_UDP && (u8[start + ihl + 6] | u8[start + ihl + 7]) !== 0))) {
      const l4len = len - ihl;
      const pseudo = csumFold(((u8[start + 12] << 8) | u8[start + 13]) + ((u8[start + 14] << 8) | u8[start + 15]) +
        ((u8[start + 16] << 8) | u8[start + 17]) + ((u8[start + 18] << 8) | u8[start + 19]) + proto + l4len);
      return ~pseudo & 0xffff;
    }
  } else if (len >= IPV6_HDR_LEN) {
    const next = u8[start + 6];
    const plen = (u8[start + 4] << 8) | u8[start + 5];
    if (plen + IPV6_HDR_LEN === len &&
      (next === IPPROTO_TCP || (next === IPPROTO_UDP && (u8[start + 46] | u8[start + 47]) !== 0))) {
      // The IPv6 header has no checksum of its own: sum it; the segment vouches for the rest.
      const addrs = csumAdd(u8, start + 8, 32, 0);
      const pseudo = csumFold(addrs + next + plen);
      return csumAdd(u8, start, 8, 0) + addrs + (~pseudo & 0xffff);
    }
  }
  return csumAdd(u8, start, len, 0);
}

/** Pseudo-header sum of the outer addresses for an upper-layer length (RFC 768 / RFC 8200 §8.1). */
function pseudoSum(d: TunnelDest, proto: number, l4len: number): number {
  if (d.af === 4) return ipv4PseudoSum(d.src0, d.dst0, proto, l4len);
  return w16(d.src0) + w16(d.src1) + w16(d.src2) + w16(d.src3) +
    w16(d.dst0) + w16(d.dst1) + w16(d.dst2) + w16(d.dst3) + proto + l4len;
}

/** Sum of the two 16-bit halves of an int32 word. */
function w16(w: number): number {
  return ((w >>> 16) & 0xffff) + (w & 0xffff);
}

function put32(u8: Uint8Array, o: number, v: number): void {
  u8[o] = v >>> 24;
  u8[o + 1] = (v >>> 16) & 0xff;
  u8[o + 2] = (v >>> 8) & 0xff;
  u8[o + 3] = v & 0xff;
}

// IPv4 outer header; the checksum is summed from the values written, not read back.
function writeOuter4(u8: Uint8Array, o: number, total: number, tos: number, df: number, ttl: number,
  proto: number, id: number, d: TunnelDest): void {
  id &= 0xffff;
  u8[o] = 0x45;
  u8[o + 1] = tos;
  u8[o + 2] = total >>> 8;
  u8[o + 3] = total & 0xff;
  u8[o + 4] = id >>> 8;
  u8[o + 5] = id & 0xff;
  u8[o + 6] = df;
  u8[o + 7] = 0;
  u8[o + 8] = ttl;
  u8[o + 9] = proto;
  put32(u8, o + 12, d.src0);
  put32(u8, o + 16, d.dst0);
  const sum = (0x4500 | tos) + total + id + (df << 8) + ((ttl << 8) | proto) + w16(d.src0) + w16(d.dst0);
  const c = ~csumFold(sum) & 0xffff;
  u8[o + 10] = c >>> 8;
  u8[o + 11] = c & 0xff;
}

// IPv6 outer header: flow label 0 (IPVS clears it), traffic class = the inner DS field.
function writeOuter6(u8: Uint8Array, o: number, payloadLen: number, tc: number, hops: number, next: number,
  d: TunnelDest): void {
  u8[o] = 0x60 | (tc >> 4);
  u8[o + 1] = (tc & 0x0f) << 4;
  u8[o + 2] = 0;
  u8[o + 3] = 0;
  u8[o + 4] = payloadLen >>> 8;
  u8[o + 5] = payloadLen & 0xff;
  u8[o + 6] = next;
  u8[o + 7] = hops;
  put32(u8, o + 8, d.src0);
  put32(u8, o + 12, d.src1);
  put32(u8, o + 16, d.src2);
  put32(u8, o + 20, d.src3);
  put32(u8, o + 24, d.dst0);
  put32(u8, o + 28, d.dst1);
  put32(u8, o + 32, d.dst2);
  put32(u8, o + 36, d.dst3);
}
