// --proxy-protocol on NAT and full-NAT TCP connections: the real server reads a PROXY
// header (v1 text or v2 binary, haproxy's spec) with the client's address before the
// client's first byte, so nginx/HAProxy/Envoy backends see the real client even behind
// full NAT. tslb inserts the header into the client's first data segment and from then
// on shifts the client's sequence numbers by its length and the server's ACK/SACK numbers
// back (forward/seqadj.ts has the rules). Both directions pass through tslb in these
// modes, which is why DR and tunnel services cannot have it. UDP services get a v2 header
// in front of the first datagram of each flow only (what dnsdist and PowerDNS accept):
// a datagram stream has no sequence numbers to shift, and a lost first datagram that the
// client sends again arrives without it.
// Contract: called after the NAT rewrite of a TCP packet (not a later fragment) of a
// connection with F_PROXY; Pkt still holds the packet's original tuple. Allocation-free.
import { F_PROXY, type ConnTable } from "../conntrack/table.ts";
import { csumAdd, csumFold } from "../wire/checksum.ts";
import { ipPseudoSum, ipSetTotalLength } from "../wire/ip.ts";
import { IPPROTO_UDP } from "../wire/ipv4.ts";
import { DROP } from "../wire/drop.ts";
import type { Frame } from "../wire/frame.ts";
import { FRAG_NONE, type Pkt } from "../wire/pkt.ts";
import { PROXY_V1_MAX_LEN, proxyWriteFromPkt } from "../wire/proxy_protocol.ts";
import { TCP_ACKF, TCP_SYN, tcpMssOption } from "../wire/tcp.ts";
import { SEQADJ_INSERT, seqAdjClient, seqAdjServer, tcpInsertPayload } from "./seqadj.ts";
import { clampMss } from "./tunnel_xmit.ts";

/** One header at a time is built here before it is copied into the packet. */
const scratch = new Uint8Array(PROXY_V1_MAX_LEN);

/**
 * The header's length for the client's SYN in `p` (its original tuple), for the entry's
 * E_DELTA; 0 when the version does not apply (v1 over UDP).
 */
export function proxyHeaderFor(p: Pkt, version: number): number {
  return proxyWriteFromPkt(scratch, 0, version, p);
}

/**
 * Client → server: shifts the sequence number, or puts the header in front of the first
 * data. The packet grows by the header's length (p.len follows). 0 or a DropReason.
 */
export function proxyToServer(f: Frame, p: Pkt, t: ConnTable, id: number, version: number): number {
  const u8 = f.u8;
  const l4len = p.start + p.len - p.l4;
  const isn = t.isn(id);
  const delta = t.proxyDelta(id);
  if (seqAdjClient(u8, p.l4, l4len, isn, delta) !== SEQADJ_INSERT) return 0;
  // The first data in a fragmented datagram: no room to grow it in place.
  if (p.frag !== FRAG_NONE) return DROP.FRAGMENT;
  const n = proxyWriteFromPkt(scratch, 0, version, p);
  if (n !== delta) return DROP.BAD_L4_HEADER; // cannot happen: same tuple, same header
  const ipLen = tcpInsertPayload(u8, p.l3, p.l4, scratch, 0, n);
  if (ipLen === 0) return DROP.TUNNEL_TOO_BIG; // over 65535 bytes with the header
  p.len = p.l3 - p.start + ipLen;
  return 0;
}

/**
 * Server → client: ACK and SACK numbers back into the client's space. The server's SYN-ACK
 * also gets its MSS lowered by the header's length, so the client's first segment still
 * fits the path once the header is in front of it.
 */
export function proxyToClient(f: Frame, p: Pkt, t: ConnTable, id: number): void {
  const delta = t.proxyDelta(id);
  seqAdjServer(f.u8, p.l4, p.start + p.len - p.l4, t.isn(id), delta);
  if ((p.tcpFlags & (TCP_SYN | TCP_ACKF)) === (TCP_SYN | TCP_ACKF)) {
    const mss = tcpMssOption(f.u8, p.l4);
    if (mss > delta) clampMss(f.dv, p, mss - delta);
  }
}

/**
 * Client → server over UDP: the first datagram of the flow gets the v2 header in front of
 * its payload; later ones pass as they are. 0 or a DropReason.
 */
export function proxyDatagram(f: Frame, p: Pkt, t: ConnTable, id: number): number {
  t.clearFlags(id, F_PROXY);
  if (p.frag !== FRAG_NONE) return DROP.FRAGMENT;
  const n = proxyWriteFromPkt(scratch, 0, t.proxyVersion(id), p);
  if (n === 0) return 0;
  const ipLen = udpInsertPayload(f, p.l3, p.l4, p.start + p.len, n);
  if (ipLen === 0) return DROP.TUNNEL_TOO_BIG;
  p.len = p.l3 - p.start + ipLen;
  return 0;
}

/**
 * Puts scratch[0, n) in front of the UDP payload at u8[l4 + 8] (the packet ends at `end`;
 * the buffer has room after it): the UDP length, the IPv4 total length and header
 * checksum or the IPv6 payload length follow, and the UDP checksum is computed afresh
 * (an IPv4 datagram sent without one stays without). Returns the new IP length, 0 when
 * it would pass 65535 bytes.
 */
function udpInsertPayload(f: Frame, l3: number, l4: number, end: number, n: number): number {
  const u8 = f.u8;
  const dv = f.dv;
  const total = end - l3 + n;
  if (total > 0xffff || end + n > u8.length) return 0;
  const pay = l4 + 8;
  u8.copyWithin(pay + n, pay, end);
  for (let i = 0; i < n; i++) u8[pay + i] = scratch[i]; // no subarray: nothing allocated
  const udpLen = end + n - l4;
  dv.setUint16(l4 + 4, udpLen);
  ipSetTotalLength(u8, l3, total);
  // An IPv4 datagram sent without a checksum stays without one.
  if (u8[l3] >> 4 === 4 && dv.getUint16(l4 + 6) === 0) return total;
  dv.setUint16(l4 + 6, 0);
  const c = ~csumFold(csumAdd(u8, l4, udpLen, ipPseudoSum(u8, l3, IPPROTO_UDP, udpLen))) & 0xffff;
  dv.setUint16(l4 + 6, c === 0 ? 0xffff : c);
  return total;
}
