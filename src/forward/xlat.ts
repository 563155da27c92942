// IP header translation for full NAT across families (DPVS's NAT64 and NAT46; RFC 7915
// §4/§5 restricted to TCP and UDP, no ICMP): the IP header in front of the
// transport header is replaced by one of the other family, in place. The transport
// header and payload never move; the new header is written just before p.l4 (into the
// headroom for 4→6, over the old header for 6→4). IPv4 options and IPv6 extension
// headers are dropped. The TCP/UDP checksum is patched (RFC 1624) for the pseudo-header
// addresses and the ports, never recomputed, except for an IPv4 UDP datagram without a
// checksum (0), which IPv6 forbids: that one gets a full checksum (RFC 7915 §4.5).
// Contract: `p` was parsed by parseIp as TCP or UDP. On success p.start, p.l3 and p.len
// describe the new packet; p.ipv, p.src*, p.dst*, p.sport, p.dport keep the parsed
// original tuple (callers key connections on it), p.l4 and p.l4csum stay valid.
// Returns 0 or a DropReason (the packet is then unchanged). Allocation-free, never throws.
import { csumAdd, csumFold, csumReplace16, csumReplace32 } from "../wire/checksum.ts";
import { DROP } from "../wire/drop.ts";
import type { Frame } from "../wire/frame.ts";
import {
  IPPROTO_TCP, IPPROTO_UDP, IPV4_CSUM, IPV4_DF, IPV4_DST, IPV4_FRAG, IPV4_ID, IPV4_MIN_LEN, IPV4_PROTO, IPV4_SRC,
  IPV4_TOS, IPV4_TOTAL_LEN, IPV4_TTL,
} from "../wire/ipv4.ts";
import { IPV6_DST, IPV6_HDR_LEN, IPV6_HOP_LIMIT, IPV6_NEXT, IPV6_PAYLOAD_LEN, IPV6_SRC } from "../wire/ipv6.ts";
import type { Pkt } from "../wire/pkt.ts";

/** Largest transport segment (header + payload) that fits an IPv4 packet: 65535 − 20. */
export const XLAT_MAX_L4 = 0xffff - IPV4_MIN_LEN;

/** Sum of the 16-bit halves of an address word (for a pseudo-header sum). */
function wordSum(w: number): number {
  return ((w >>> 16) & 0xffff) + (w & 0xffff);
}

/**
 * IPv4 → IPv6: source s0..s3:sport, destination d0..d3:dport. Traffic class = TOS, flow
 * label 0, hop limit = TTL (the caller decrements it, as for any forwarding). Needs
 * 40 − IHL bytes in front of p.start (DROP.TX_ERROR without them: the packet cannot be
 * written); fragments are DROP.FRAGMENT.
 */
export function xlat4to6(f: Frame, p: Pkt, s0: number, s1: number, s2: number, s3: number,
  d0: number, d1: number, d2: number, d3: number, sport: number, dport: number): number {
  if (p.frag !== 0) return DROP.FRAGMENT;
  const u8 = f.u8;
  const dv = f.dv;
  const l3 = p.l3;
  const l4 = p.l4;
  if ((u8[l3] >> 4) !== 4) return DROP.UNSUPPORTED_L3;
  const proto = u8[l3 + IPV4_PROTO];
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return DROP.UNSUPPORTED_L4;
  const at = l4 - IPV6_HDR_LEN; // where the IPv6 header goes
  if (at < 0) return DROP.TX_ERROR;
  // Everything the new header and the checksum need, read before it is overwritten
  // (the IPv6 header overlaps the IPv4 one).
  const tos = u8[l3 + IPV4_TOS];
  const ttl = u8[l3 + IPV4_TTL];
  const l4len = l3 + dv.getUint16(l3 + IPV4_TOTAL_LEN) - l4;
  const oldSrc = dv.getInt32(l3 + IPV4_SRC);
  const oldDst = dv.getInt32(l3 + IPV4_DST);
  const oldSport = dv.getUint16(l4);
  const oldDport = dv.getUint16(l4 + 2);
  const csumAt = p.l4csum;
  const c0 = dv.getUint16(csumAt);

  dv.setUint32(at, (0x60000000 | (tos << 20)) >>> 0);
  dv.setUint16(at + IPV6_PAYLOAD_LEN, l4len);
  u8[at + IPV6_NEXT] = proto;
  u8[at + IPV6_HOP_LIMIT] = ttl;
  dv.setInt32(at + IPV6_SRC, s0); dv.setInt32(at + IPV6_SRC + 4, s1);
  dv.setInt32(at + IPV6_SRC + 8, s2); dv.setInt32(at + IPV6_SRC + 12, s3);
  dv.setInt32(at + IPV6_DST, d0); dv.setInt32(at + IPV6_DST + 4, d1);
  dv.setInt32(at + IPV6_DST + 8, d2); dv.setInt32(at + IPV6_DST + 12, d3);
  dv.setUint16(l4, sport);
  dv.setUint16(l4 + 2, dport);

  let c: number;
  if (proto === IPPROTO_UDP && c0 === 0) {
    // No checksum in IPv4; mandatory in IPv6 (RFC 8200 §8.1): compute it in full.
    const pseudo = wordSum(s0) + wordSum(s1) + wordSum(s2) + wordSum(s3) +
      wordSum(d0) + wordSum(d1) + wordSum(d2) + wordSum(d3) + proto + l4len;
    c = ~csumFold(csumAdd(u8, l4, l4len, pseudo)) & 0xffff;
  } else {
    // Length and protocol sum the same in both pseudo-headers: only addresses change,
    // the IPv4 word becoming word 0 and words 1–3 replacing zeros.
    c = csumReplace32(c0, oldSrc, s0);
    c = csumReplace32(c, 0, s1);
    c = csumReplace32(c, 0, s2);
    c = csumReplace32(c, 0, s3);
    c = csumReplace32(c, oldDst, d0);
    c = csumReplace32(c, 0, d1);
    c = csumReplace32(c, 0, d2);
    c = csumReplace32(c, 0, d3);
    c = csumReplace16(c, oldSport, sport);
    c = csumReplace16(c, oldDport, dport);
  }
  if (c === 0 && proto === IPPROTO_UDP) c = 0xffff;
  dv.setUint16(csumAt, c);

  p.start = at;
  p.l3 = at;
  p.len = IPV6_HDR_LEN + l4len;
  return 0;
}

/**
 * IPv6 → IPv4: source s:sport, destination d:dport, identification ipId, DF set,
 * TOS = traffic class, TTL = hop limit, header checksum computed. A transport segment
 * over 65515 bytes does not fit IPv4 (DROP.TUNNEL_TOO_BIG); fragments are DROP.FRAGMENT.
 * A UDP checksum of 0 (invalid in IPv6) is left at 0, IPv4's "no checksum", as the
 * full NAT path does for UDP without a checksum.
 */
export function xlat6to4(f: Frame, p: Pkt, s: number, d: number, sport: number, dport: number, ipId: number): number {
  if (p.frag !== 0) return DROP.FRAGMENT;
  const u8 = f.u8;
  const dv = f.dv;
  const l3 = p.l3;
  const l4 = p.l4;
  if ((u8[l3] >> 4) !== 6) return DROP.UNSUPPORTED_L3;
  const proto = p.proto;
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return DROP.UNSUPPORTED_L4;
  const l4len = l3 + IPV6_HDR_LEN + dv.getUint16(l3 + IPV6_PAYLOAD_LEN) - l4;
  if (l4len > XLAT_MAX_L4) return DROP.TUNNEL_TOO_BIG;
  if (l4len < 0 || l4 - IPV4_MIN_LEN < l3) return DROP.BAD_IP_HEADER;
  const at = l4 - IPV4_MIN_LEN;
  const tc = (dv.getUint16(l3) >>> 4) & 0xff;
  const hop = u8[l3 + IPV6_HOP_LIMIT];
  const os0 = dv.getInt32(l3 + IPV6_SRC), os1 = dv.getInt32(l3 + IPV6_SRC + 4);
  const os2 = dv.getInt32(l3 + IPV6_SRC + 8), os3 = dv.getInt32(l3 + IPV6_SRC + 12);
  const od0 = dv.getInt32(l3 + IPV6_DST), od1 = dv.getInt32(l3 + IPV6_DST + 4);
  const od2 = dv.getInt32(l3 + IPV6_DST + 8), od3 = dv.getInt32(l3 + IPV6_DST + 12);
  const oldSport = dv.getUint16(l4);
  const oldDport = dv.getUint16(l4 + 2);
  const csumAt = p.l4csum;
  const c0 = dv.getUint16(csumAt);

  u8[at] = 0x45;
  u8[at + IPV4_TOS] = tc;
  dv.setUint16(at + IPV4_TOTAL_LEN, IPV4_MIN_LEN + l4len);
  dv.setUint16(at + IPV4_ID, ipId & 0xffff);
  dv.setUint16(at + IPV4_FRAG, IPV4_DF);
  u8[at + IPV4_TTL] = hop;
  u8[at + IPV4_PROTO] = proto;
  dv.setUint16(at + IPV4_CSUM, 0);
  dv.setInt32(at + IPV4_SRC, s);
  dv.setInt32(at + IPV4_DST, d);
  dv.setUint16(at + IPV4_CSUM, ~csumFold(csumAdd(u8, at, IPV4_MIN_LEN, 0)) & 0xffff);
  dv.setUint16(l4, sport);
  dv.setUint16(l4 + 2, dport);

  if (!(proto === IPPROTO_UDP && c0 === 0)) {
    let c = csumReplace32(c0, os0, s);
    c = csumReplace32(c, os1, 0);
    c = csumReplace32(c, os2, 0);
    c = csumReplace32(c, os3, 0);
    c = csumReplace32(c, od0, d);
    c = csumReplace32(c, od1, 0);
    c = csumReplace32(c, od2, 0);
    c = csumReplace32(c, od3, 0);
    c = csumReplace16(c, oldSport, sport);
    c = csumReplace16(c, oldDport, dport);
    if (c === 0 && proto === IPPROTO_UDP) c = 0xffff;
    dv.setUint16(csumAt, c);
  }

  p.start = at;
  p.l3 = at;
  p.len = IPV4_MIN_LEN + l4len;
  return 0;
}
