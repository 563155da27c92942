// NAT ("Masq", ip_vs_nat_xmit): client→server packets get the real server as
// destination; server→client replies get the VIP back as source. Checksums are patched
// where the fields are written (RFC 1624), never recomputed: the IPv4 header checksum,
// and the TCP/UDP checksum for the pseudo-header address and the port.
// Contract: `p` was parsed by parseIp (TCP or UDP) and matched connection `id`.
// Returns 0 (send the packet) or a DropReason, like every xmit function.
import type { ConnTable } from "../conntrack/table.ts";
import { csumApply, csumDelta16, csumDelta32, csumReplace16, csumReplace32 } from "../wire/checksum.ts";
import type { Frame } from "../wire/frame.ts";
import { IPPROTO_UDP, IPV4_CSUM, IPV4_DST, IPV4_SRC, ipv4SetDstCsum, ipv4SetSrcCsum } from "../wire/ipv4.ts";
import { IPV6_DST, IPV6_SRC } from "../wire/ipv6.ts";
import { FRAG_LATER, type Pkt } from "../wire/pkt.ts";
import { xlat4to6, xlat6to4 } from "./xlat.ts";

/** Which connection address replaces the packet's: 1 = virtual (SNAT), 2 = destination (DNAT). */
const ADDR_CLIENT = 0;
const ADDR_VIRTUAL = 1;
const ADDR_DEST = 2;
/** Full NAT: the balancer's local address that the real server replies to. */
const ADDR_LOCAL = 3;

/**
 * Writes connection address `which` into the packet's source (dst=false) or destination
 * field and returns the L4 checksum patched for the change. IPv4 also patches the header.
 */
function setAddr(dv: DataView, p: Pkt, t: ConnTable, id: number, which: number, dst: boolean, csum: number): number {
  if (p.ipv === 4) {
    const a = t.addrWord(id, which, 0);
    const old = dst ? ipv4SetDstCsum(dv, p.l3, a) : ipv4SetSrcCsum(dv, p.l3, a);
    return csumReplace32(csum, old, a);
  }
  // IPv6 has no header checksum; the 128-bit address is in the L4 pseudo-header.
  const at = p.l3 + (dst ? IPV6_DST : IPV6_SRC);
  for (let w = 0; w < 4; w++) {
    const a = t.addrWord(id, which, w);
    const old = dv.getInt32(at + w * 4);
    if (old !== a) {
      dv.setInt32(at + w * 4, a);
      csum = csumReplace32(csum, old, a);
    }
  }
  return csum;
}

/**
 * The IPv4 rewrite of every NAT and full-NAT packet that has its transport header: both
 * addresses and ports written (an unchanged one is written back as it was), the header
 * and transport checksums each patched with one fold from the summed field changes.
 */
function rewrite4(dv: DataView, p: Pkt, src: number, dst: number, sport: number, dport: number): void {
  const l3 = p.l3;
  const d = csumDelta32(dv.getInt32(l3 + IPV4_SRC), src) + csumDelta32(dv.getInt32(l3 + IPV4_DST), dst);
  dv.setInt32(l3 + IPV4_SRC, src);
  dv.setInt32(l3 + IPV4_DST, dst);
  dv.setUint16(l3 + IPV4_CSUM, csumApply(dv.getUint16(l3 + IPV4_CSUM), d));
  const at = p.l4csum;
  const c0 = dv.getUint16(at);
  dv.setUint16(p.l4, sport);
  dv.setUint16(p.l4 + 2, dport);
  // A zero UDP checksum over IPv4 means "none" and stays 0.
  if (c0 === 0 && p.proto === IPPROTO_UDP) return;
  const c = csumApply(c0, d + csumDelta16(p.sport, sport) + csumDelta16(p.dport, dport));
  // RFC 768: a computed UDP checksum of 0 is sent as all ones.
  dv.setUint16(at, c === 0 && p.proto === IPPROTO_UDP ? 0xffff : c);
}

export function natXmit(f: Frame, p: Pkt, t: ConnTable, id: number): number {
  const dv = f.dv;
  if (p.ipv === 4 && p.frag !== FRAG_LATER) {
    if (p.dir === 0) rewrite4(dv, p, p.src0, t.addrWord(id, ADDR_DEST, 0), p.sport, t.dport(id));
    else rewrite4(dv, p, t.addrWord(id, ADDR_VIRTUAL, 0), p.dst0, t.vport(id), p.dport);
    return 0;
  }
  if (p.frag === FRAG_LATER) {
    // No transport header in a later fragment: only the address changes (the first
    // fragment carried the port and the L4 checksum for the whole datagram).
    if (p.dir === 0) setAddr(dv, p, t, id, ADDR_DEST, true, 0);
    else setAddr(dv, p, t, id, ADDR_VIRTUAL, false, 0);
    return 0;
  }
  const at = p.l4csum;
  const c0 = dv.getUint16(at);
  // A zero UDP checksum over IPv4 means "none" and stays 0 (IPv6 forbids 0; left as sent).
  const patch = !(p.proto === IPPROTO_UDP && c0 === 0);
  let c = c0;
  if (p.dir === 0) {
    const dport = t.dport(id);
    c = setAddr(dv, p, t, id, ADDR_DEST, true, c);
    c = csumReplace16(c, p.dport, dport);
    dv.setUint16(p.l4 + 2, dport);
  } else {
    const vport = t.vport(id);
    c = setAddr(dv, p, t, id, ADDR_VIRTUAL, false, c);
    c = csumReplace16(c, p.sport, vport);
    dv.setUint16(p.l4, vport);
  }
  if (patch) {
    // RFC 768: a computed UDP checksum of 0 is sent as all ones.
    if (c === 0 && p.proto === IPPROTO_UDP) c = 0xffff;
    dv.setUint16(at, c);
  }
  return 0;
}


/**
 * Full NAT (DPVS's FNAT): both ends are rewritten. Client→server: client:cport becomes
 * the local address and port, VIP:vport the real server. Server→client: the reverse, so
 * the real server needs no route back through the balancer and no VIP.
 */
export function fullNatXmit(f: Frame, p: Pkt, t: ConnTable, id: number): number {
  const dv = f.dv;
  if (p.ipv === 4 && p.frag !== FRAG_LATER) {
    if (p.dir === 0) rewrite4(dv, p, t.addrWord(id, ADDR_LOCAL, 0), t.addrWord(id, ADDR_DEST, 0), t.lport(id), t.dport(id));
    else rewrite4(dv, p, t.addrWord(id, ADDR_VIRTUAL, 0), t.addrWord(id, ADDR_CLIENT, 0), t.vport(id), t.cport(id));
    return 0;
  }
  if (p.frag === FRAG_LATER) {
    if (p.dir === 0) {
      setAddr(dv, p, t, id, ADDR_LOCAL, false, 0);
      setAddr(dv, p, t, id, ADDR_DEST, true, 0);
    } else {
      setAddr(dv, p, t, id, ADDR_VIRTUAL, false, 0);
      setAddr(dv, p, t, id, ADDR_CLIENT, true, 0);
    }
    return 0;
  }
  const at = p.l4csum;
  const c0 = dv.getUint16(at);
  const patch = !(p.proto === IPPROTO_UDP && c0 === 0);
  let c = c0;
  let sport: number;
  let dport: number;
  if (p.dir === 0) {
    c = setAddr(dv, p, t, id, ADDR_LOCAL, false, c);
    c = setAddr(dv, p, t, id, ADDR_DEST, true, c);
    sport = t.lport(id);
    dport = t.dport(id);
  } else {
    c = setAddr(dv, p, t, id, ADDR_VIRTUAL, false, c);
    c = setAddr(dv, p, t, id, ADDR_CLIENT, true, c);
    sport = t.vport(id);
    dport = t.cport(id);
  }
  c = csumReplace16(c, p.sport, sport);
  c = csumReplace16(c, p.dport, dport);
  dv.setUint16(p.l4, sport);
  dv.setUint16(p.l4 + 2, dport);
  if (patch) {
    if (c === 0 && p.proto === IPPROTO_UDP) c = 0xffff;
    dv.setUint16(at, c);
  }
  return 0;
}

/**
 * Full NAT to a real server of the other family (NAT46/NAT64): the packet is rebuilt in the
 * family of the side it goes to, with the same addresses and ports fullNatXmit would
 * write. `ipId` is the identification of an IPv4 header made here.
 */
export function fullNatXlatXmit(f: Frame, p: Pkt, t: ConnTable, id: number, ipId: number): number {
  // Toward the server: from the local address; toward the client: from the VIP.
  const from = p.dir === 0 ? ADDR_LOCAL : ADDR_VIRTUAL;
  const to = p.dir === 0 ? ADDR_DEST : ADDR_CLIENT;
  const sport = p.dir === 0 ? t.lport(id) : t.vport(id);
  const dport = p.dir === 0 ? t.dport(id) : t.cport(id);
  if (p.ipv === 6) return xlat6to4(f, p, t.addrWord(id, from, 0), t.addrWord(id, to, 0), sport, dport, ipId);
  return xlat4to6(f, p, t.addrWord(id, from, 0), t.addrWord(id, from, 1), t.addrWord(id, from, 2), t.addrWord(id, from, 3),
    t.addrWord(id, to, 0), t.addrWord(id, to, 1), t.addrWord(id, to, 2), t.addrWord(id, to, 3), sport, dport);
}
