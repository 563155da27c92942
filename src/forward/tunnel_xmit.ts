// Tunnelling ("Tunnel", ip_vs_tunnel_xmit): TTL decrement, IPVS's MTU check for the
// encapsulated size — a DF packet that no longer fits is answered with ICMP
// "fragmentation needed" / ICMPv6 "packet too big" carrying the inner MTU, built in place
// in front of the packet — optional MSS clamping of SYNs (tslb's --mss-clamp), then the
// outer header written into headroom (forward/tunnel.ts).
// Contract: `p` parsed (TCP/UDP, or an ICMP error relayed as is: `relay`), at least 48
// bytes of headroom before p.start. Returns 0 (send p.start..p.len to the TUN: the outer
// packet, or the ICMP answer when TUNNEL_ICMP_SENT) or a DropReason. No allocation.
import { csumAdd, csumFold, csumReplace16 } from "../wire/checksum.ts";
import { DROP } from "../wire/drop.ts";
import type { Frame } from "../wire/frame.ts";
import { icmp6FillCsum, icmpFillCsum } from "../wire/icmp.ts";
import { IPPROTO_TCP } from "../wire/ipv4.ts";
import type { Pkt } from "../wire/pkt.ts";
import { TCP_SYN } from "../wire/tcp.ts";
import { type TunnelDest, tunnelEncap, tunnelMtuCheck } from "./tunnel.ts";
import { decrementTtl } from "./ttl.ts";

/** The packet became an ICMP error for its sender (too big for the tunnel): send it, drop the original. */
export const TUNNEL_ICMP_SENT = -2;

/** IPv6 minimum MTU: an ICMPv6 error must fit in it (RFC 4443 §2.4c). */
const IPV6_MIN_MTU = 1280;

/**
 * Lowers the MSS option of a SYN at p.l4 to at most `maxMss` (patching the TCP checksum)
 * so the connection's segments fit the tunnel without fragmentation.
 */
export function clampMss(dv: DataView, p: Pkt, maxMss: number): void {
  const o = p.l4;
  const end = o + ((dv.getUint8(o + 12) >> 4) << 2);
  let at = o + 20;
  while (at < end) {
    const kind = dv.getUint8(at);
    if (kind === 0) return; // end of options
    if (kind === 1) { at++; continue; } // no-op
    if (at + 1 >= end) return;
    const len = dv.getUint8(at + 1);
    if (len < 2 || at + len > end) return;
    if (kind === 2 && len === 4) {
      const mss = dv.getUint16(at + 2);
      if (mss > maxMss) {
        dv.setUint16(at + 2, maxMss);
        // The option sits at an even offset from the header start in practice, but the
        // checksum word it belongs to depends on that: patch the 16-bit word(s) it spans.
        const rel = at + 2 - o;
        if ((rel & 1) === 0) dv.setUint16(o + 16, csumReplace16(dv.getUint16(o + 16), mss, maxMss));
        else {
          const w0 = at + 1, w1 = at + 3;
          const old0 = (dv.getUint8(w0) << 8) | (mss >> 8), new0 = (dv.getUint8(w0) << 8) | (maxMss >> 8);
          const old1 = ((mss & 0xff) << 8) | dv.getUint8(w1 + 1), new1 = ((maxMss & 0xff) << 8) | dv.getUint8(w1 + 1);
          dv.setUint16(o + 16, csumReplace16(csumReplace16(dv.getUint16(o + 16), old0, new0), old1, new1));
        }
      }
      return;
    }
    at += len;
  }
}

/**
 * Turns the packet into an ICMP "fragmentation needed" (IPv4) / "packet too big" (IPv6)
 * for its sender, quoting it, with `mtu`; written in front of the packet. The error comes
 * from the packet's destination (the VIP): that is the address the client talked to.
 */
export function icmpTooBig(f: Frame, p: Pkt, mtu: number): void {
  const u8 = f.u8;
  const dv = f.dv;
  const q = p.start;
  if (p.ipv === 4) {
    const qlen = Math.min(p.len, ((u8[q] & 0x0f) << 2) + 8);
    const o = q - 28;
    dv.setUint32(o, 0x45000000 | (28 + qlen));
    dv.setUint32(o + 4, 0);
    dv.setUint32(o + 8, 0x40010000); // TTL 64, protocol ICMP, checksum 0 for now
    dv.setInt32(o + 12, dv.getInt32(q + 16));
    dv.setInt32(o + 16, dv.getInt32(q + 12));
    dv.setUint16(o + 10, ~csumFold(csumAdd(u8, o, 20, 0)) & 0xffff);
    dv.setUint32(o + 20, 0x03040000); // destination unreachable, fragmentation needed
    dv.setUint32(o + 24, mtu & 0xffff);
    icmpFillCsum(u8, dv, o + 20, 8 + qlen);
    p.start = o;
    p.len = 28 + qlen;
    return;
  }
  const qlen = Math.min(p.len, IPV6_MIN_MTU - 48);
  const o = q - 48;
  dv.setUint32(o, 0x60000000);
  dv.setUint16(o + 4, 8 + qlen);
  dv.setUint8(o + 6, 58);
  dv.setUint8(o + 7, 64);
  for (let w = 0; w < 4; w++) {
    dv.setInt32(o + 8 + w * 4, dv.getInt32(q + 24 + w * 4));
    dv.setInt32(o + 24 + w * 4, dv.getInt32(q + 8 + w * 4));
  }
  dv.setUint32(o + 40, 0x02000000); // packet too big
  dv.setUint32(o + 44, mtu);
  icmp6FillCsum(u8, dv, o, o + 40, 8 + qlen);
  p.start = o;
  p.len = 48 + qlen;
}

/**
 * Sends the packet through tunnel `tun` (innerMtu: what fits inside it). `relay`: an ICMP
 * error travelling like the connection's packets (no MTU answer for it: IPVS never
 * answers ICMP with ICMP). `mssClamp`: lower SYNs' MSS to fit.
 */
export function tunnelXmit(f: Frame, p: Pkt, tun: TunnelDest, innerMtu: number, ipId: number, relay: boolean, mssClamp: boolean): number {
  if (innerMtu <= 0) return DROP.TUNNEL_TOO_BIG;
  const dv = f.dv;
  const r = decrementTtl(dv, p);
  if (r !== 0) return r;
  if (!relay) {
    const mtu = tunnelMtuCheck(f.u8, p.start, p.len, innerMtu);
    if (mtu !== 0) {
      icmpTooBig(f, p, mtu);
      return TUNNEL_ICMP_SENT;
    }
    if (mssClamp && p.proto === IPPROTO_TCP && (p.tcpFlags & TCP_SYN) !== 0) clampMss(dv, p, innerMtu - (p.ipv === 4 ? 40 : 60));
  }
  const start = tunnelEncap(f, p.start, p.len, tun, ipId, p.hash);
  if (start < 0) return -start;
  p.len += p.start - start;
  p.start = start;
  return 0;
}
