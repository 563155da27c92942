// ICMP errors that belong to a tracked connection (IPVS ip_vs_in_icmp / ip_vs_out_icmp,
// reference §5.5). The quoted packet identifies the connection: its reverse is looked up
// like a packet of the flow. For NAT the error is rewritten so that each side sees the
// addresses it knows: an error from the client side about a VIP→client packet goes to
// the real server as an error about RIP→client; an error from the real server about a
// client→RIP packet goes to the client as an error about client→VIP.
// Full NAT translates both ends of the quote (icmpFullNatXmit).
// Contract: no allocation; `q` is a scratch Pkt the caller owns.
import type { ConnTable } from "../conntrack/table.ts";
import { csumReplace16, csumReplace32 } from "../wire/checksum.ts";
import { DROP } from "../wire/drop.ts";
import type { Frame } from "../wire/frame.ts";
import { ICMP_HDR_LEN, icmp6FillCsum, icmp6IsError, icmpCsumOk, icmpFillCsum, icmpIsError } from "../wire/icmp.ts";
import { IPPROTO_TCP, IPPROTO_UDP, IPV4_CSUM, ipv4SetDstCsum, ipv4SetSrcCsum } from "../wire/ipv4.ts";
import { IPV6_DST, IPV6_HDR_LEN, IPV6_SRC } from "../wire/ipv6.ts";
import type { Pkt } from "../wire/pkt.ts";

/** Not an error message (echo, NDP ...): not IPVS's business. */
export const ICMP_NOT_ERROR = -1;

/**
 * For an ICMP/ICMPv6 message in `p` (p.l4 = ICMP header), fills `q` with the key of the
 * flow the quoted packet belongs to, seen in the direction opposite to the quote (so a
 * normal lookup finds the connection), and q.l3/q.l4 with the quote's offsets.
 * Returns 0, ICMP_NOT_ERROR, or a DropReason (bad checksum, truncated or fragmented quote,
 * quote of another protocol).
 */
export function icmpErrorKey(f: Frame, p: Pkt, q: Pkt): number {
  const u8 = f.u8;
  const dv = f.dv;
  const end = p.start + p.len;
  const o = p.l4;
  if (o + ICMP_HDR_LEN > end) return DROP.TRUNCATED;
  const type = u8[o];
  const inner = o + ICMP_HDR_LEN;
  q.ipv = p.ipv;
  q.l3 = inner;
  if (p.ipv === 4) {
    if (!icmpIsError(type)) return ICMP_NOT_ERROR;
    if (!icmpCsumOk(u8, o, end - o)) return DROP.BAD_L4_HEADER;
    if (inner + 20 > end || (u8[inner] >> 4) !== 4) return DROP.TRUNCATED;
    const ihl = (u8[inner] & 0x0f) << 2;
    // A quote of a non-first fragment has no ports: IPVS ignores it.
    if ((dv.getUint16(inner + 6) & 0x1fff) !== 0) return DROP.FRAGMENT;
    q.proto = u8[inner + 9];
    q.l4 = inner + ihl;
    q.src0 = dv.getInt32(inner + 16); q.dst0 = dv.getInt32(inner + 12);
    q.src1 = 0; q.src2 = 0; q.src3 = 0; q.dst1 = 0; q.dst2 = 0; q.dst3 = 0;
  } else {
    if (!icmp6IsError(type)) return ICMP_NOT_ERROR;
    if (inner + IPV6_HDR_LEN > end || (u8[inner] >> 4) !== 6) return DROP.TRUNCATED;
    q.proto = u8[inner + 6];
    q.l4 = inner + IPV6_HDR_LEN;
    q.src0 = dv.getInt32(inner + IPV6_DST); q.src1 = dv.getInt32(inner + IPV6_DST + 4);
    q.src2 = dv.getInt32(inner + IPV6_DST + 8); q.src3 = dv.getInt32(inner + IPV6_DST + 12);
    q.dst0 = dv.getInt32(inner + IPV6_SRC); q.dst1 = dv.getInt32(inner + IPV6_SRC + 4);
    q.dst2 = dv.getInt32(inner + IPV6_SRC + 8); q.dst3 = dv.getInt32(inner + IPV6_SRC + 12);
  }
  if (q.proto !== IPPROTO_TCP && q.proto !== IPPROTO_UDP) return DROP.UNSUPPORTED_L4;
  if (q.l4 + 4 > end) return DROP.TRUNCATED;
  q.sport = dv.getUint16(q.l4 + 2);
  q.dport = dv.getUint16(q.l4);
  q.tcpFlags = 0;
  return 0;
}

/** Replaces 4 address words at `at` with connection address `which` of `id`; returns the checksum patched for it. */
function swapAddr(dv: DataView, at: number, words: number, t: ConnTable, id: number, which: number, csum: number): number {
  for (let w = 0; w < words; w++) {
    const a = t.addrWord(id, which, w);
    const old = dv.getInt32(at + w * 4);
    dv.setInt32(at + w * 4, a);
    csum = csumReplace32(csum, old, a);
  }
  return csum;
}

/**
 * NAT rewrite of an ICMP error of connection `id` (q.dir from the lookup, q from
 * icmpErrorKey). Outer address, quoted address and port, the quote's IPv4 header checksum
 * and (when quoted whole) its L4 checksum are patched; the ICMP checksum is recomputed
 * (errors are rare and short). Returns 0.
 */
export function icmpNatXmit(f: Frame, p: Pkt, q: Pkt, t: ConnTable, id: number): number {
  const u8 = f.u8;
  const dv = f.dv;
  const end = p.start + p.len;
  const v4 = p.ipv === 4;
  const words = v4 ? 1 : 4;
  // dir 0: the quote is VIP→client (sent on to the client); the error goes to the real
  // server, about RIP→client. dir 1: the quote is client→RIP; the error goes to the client,
  // about client→VIP.
  const which = q.dir === 0 ? 2 : 1;
  const newPort = q.dir === 0 ? t.dport(id) : t.vport(id);
  if (v4) {
    const a = t.addrWord(id, which, 0);
    if (q.dir === 0) ipv4SetDstCsum(dv, p.l3, a);
    else ipv4SetSrcCsum(dv, p.l3, a);
  } else {
    swapAddr(dv, p.l3 + (q.dir === 0 ? IPV6_DST : IPV6_SRC), 4, t, id, which, 0);
  }
  // The quoted packet: its source (dir 0) or destination (dir 1) address and port.
  const qAddr = q.l3 + (v4 ? (q.dir === 0 ? 12 : 16) : q.dir === 0 ? IPV6_SRC : IPV6_DST);
  const portAt = q.l4 + (q.dir === 0 ? 0 : 2);
  const oldPort = dv.getUint16(portAt);
  const inner = swapAddr(dv, qAddr, words, t, id, which, 0);
  dv.setUint16(portAt, newPort);
  if (v4) {
    // The quote's own IPv4 header checksum covers the address just changed.
    dv.setUint16(q.l3 + IPV4_CSUM, csumApplyDelta(dv.getUint16(q.l3 + IPV4_CSUM), inner));
  }
  const csumAt = q.l4 + (q.proto === IPPROTO_TCP ? 16 : 6);
  if (csumAt + 2 <= end) {
    const c0 = dv.getUint16(csumAt);
    if (!(q.proto === IPPROTO_UDP && c0 === 0)) {
      dv.setUint16(csumAt, csumReplace16(csumApplyDelta(c0, inner), oldPort, newPort));
    }
  }
  if (v4) icmpFillCsum(u8, dv, p.l4, end - p.l4);
  else icmp6FillCsum(u8, dv, p.l3, p.l4, end - p.l4);
  return 0;
}

/**
 * Full-NAT rewrite of an ICMP error of connection `id` (q.dir from the lookup, q from
 * icmpErrorKey): both addresses and both ports of the quote are translated, so each side
 * sees the addresses it knows. dir 1: the quote is laddr:lport→RIP:rport (an error from
 * the real server side, addressed to laddr); it goes VIP→client about client:cport→VIP:vport.
 * dir 0: the quote is VIP:vport→client:cport (an error from the client side, addressed to
 * the VIP); it goes laddr→RIP about RIP:rport→laddr:lport. The outer source becomes the
 * quote's new destination address, as icmpNatXmit puts the VIP there for dir 1.
 * Checksums as icmpNatXmit: outer IPv4 header and the quote's IPv4 header patched
 * (RFC 1624), the quoted L4 checksum patched when quoted (not with an 8-byte TCP quote;
 * a UDP 0 "none" stays 0), the ICMP checksum recomputed. Returns 0, or
 * DROP.BAD_IP_HEADER for a quoted IPv4 header shorter than 20 bytes.
 */
export function icmpFullNatXmit(f: Frame, p: Pkt, q: Pkt, t: ConnTable, id: number): number {
  const u8 = f.u8;
  const dv = f.dv;
  const end = p.start + p.len;
  const v4 = p.ipv === 4;
  const words = v4 ? 1 : 4;
  if (v4 && q.l4 - q.l3 < 20) return DROP.BAD_IP_HEADER;
  // Connection addresses (0 client, 1 VIP, 2 RIP, 3 laddr) for the quote's new source and
  // destination, and their ports.
  const newSrc = q.dir === 0 ? 2 : 0;
  const newDst = q.dir === 0 ? 3 : 1;
  const newSport = q.dir === 0 ? t.dport(id) : t.cport(id);
  const newDport = q.dir === 0 ? t.lport(id) : t.vport(id);
  // Outer header: from the quote's new destination to its new source.
  if (v4) {
    ipv4SetSrcCsum(dv, p.l3, t.addrWord(id, newDst, 0));
    ipv4SetDstCsum(dv, p.l3, t.addrWord(id, newSrc, 0));
  } else {
    swapAddr(dv, p.l3 + IPV6_SRC, 4, t, id, newDst, 0);
    swapAddr(dv, p.l3 + IPV6_DST, 4, t, id, newSrc, 0);
  }
  // The quote: both addresses (one delta for its IPv4 header and its pseudo-header) and ports.
  let inner = swapAddr(dv, q.l3 + (v4 ? 12 : IPV6_SRC), words, t, id, newSrc, 0);
  inner = swapAddr(dv, q.l3 + (v4 ? 16 : IPV6_DST), words, t, id, newDst, inner);
  const oldSport = dv.getUint16(q.l4);
  const oldDport = dv.getUint16(q.l4 + 2);
  dv.setUint16(q.l4, newSport);
  dv.setUint16(q.l4 + 2, newDport);
  if (v4) dv.setUint16(q.l3 + IPV4_CSUM, csumApplyDelta(dv.getUint16(q.l3 + IPV4_CSUM), inner));
  const csumAt = q.l4 + (q.proto === IPPROTO_TCP ? 16 : 6);
  if (csumAt + 2 <= end) {
    const c0 = dv.getUint16(csumAt);
    if (!(q.proto === IPPROTO_UDP && c0 === 0)) {
      let c = csumApplyDelta(c0, inner);
      c = csumReplace16(c, oldSport, newSport);
      c = csumReplace16(c, oldDport, newDport);
      dv.setUint16(csumAt, c);
    }
  }
  if (v4) icmpFillCsum(u8, dv, p.l4, end - p.l4);
  else icmp6FillCsum(u8, dv, p.l3, p.l4, end - p.l4);
  return 0;
}

/**
 * Applies an address change recorded by swapAddr(…, csum = 0) to another checksum.
 * Patching checksum 0 yields D = ~Σ, where Σ is the one's-complement sum of (~old + new)
 * over the changed words; patching C is then ~(~C + Σ) = ~(~C + ~D) (RFC 1624 eqn. 3).
 */
function csumApplyDelta(csum: number, delta: number): number {
  let s = (~csum & 0xffff) + (~delta & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}
