// A TCP reset for the sender of the packet in `p`, written over it (RFC 9293 §3.10.7.1):
// addresses and ports swapped, no payload; if the segment carried an ACK the reset takes
// its acknowledgment number as sequence, else it acknowledges the segment. tslb answers
// this way for a connection whose real server was deleted, so the client fails at once
// instead of retransmitting into silence (IPVS drops silently).
// Contract: p parsed (TCP, not a later fragment); returns the new length (p.len set).
import { csumAdd, csumFold, ipv4PseudoSum } from "../wire/checksum.ts";
import type { Frame } from "../wire/frame.ts";
import { TCP_ACKF, TCP_FIN, TCP_RST, TCP_SYN } from "../wire/tcp.ts";
import type { Pkt } from "../wire/pkt.ts";

export function tcpResetInPlace(f: Frame, p: Pkt): number {
  const u8 = f.u8;
  const dv = f.dv;
  const l3 = p.l3;
  const l4 = p.l4;
  const v4 = p.ipv === 4;
  const hdr = v4 ? l4 - l3 : 40; // an IPv6 reset carries no extension headers
  const o4 = l3 + hdr;
  const seq = dv.getUint32(l4 + 4);
  const ack = dv.getUint32(l4 + 8);
  const dataOff = (u8[l4 + 12] >> 4) << 2;
  const payload = p.start + p.len - (l4 + dataOff);
  const flags = p.tcpFlags;
  const sport = p.sport;
  const dport = p.dport;
  // Swap the addresses.
  if (v4) {
    const s = dv.getInt32(l3 + 12);
    dv.setInt32(l3 + 12, dv.getInt32(l3 + 16));
    dv.setInt32(l3 + 16, s);
  } else {
    for (let w = 0; w < 4; w++) {
      const s = dv.getInt32(l3 + 8 + w * 4);
      dv.setInt32(l3 + 8 + w * 4, dv.getInt32(l3 + 24 + w * 4));
      dv.setInt32(l3 + 24 + w * 4, s);
    }
    u8[l3 + 6] = 6; // next header TCP
  }
  // The TCP header, rebuilt right after the IP header.
  dv.setUint16(o4, dport);
  dv.setUint16(o4 + 2, sport);
  if ((flags & TCP_ACKF) !== 0) {
    dv.setUint32(o4 + 4, ack);
    dv.setUint32(o4 + 8, 0);
    u8[o4 + 13] = TCP_RST;
  } else {
    dv.setUint32(o4 + 4, 0);
    const used = payload + ((flags & TCP_SYN) !== 0 ? 1 : 0) + ((flags & TCP_FIN) !== 0 ? 1 : 0);
    dv.setUint32(o4 + 8, (seq + used) >>> 0);
    u8[o4 + 13] = TCP_RST | TCP_ACKF;
  }
  u8[o4 + 12] = 5 << 4;
  dv.setUint16(o4 + 14, 0);
  dv.setUint16(o4 + 16, 0);
  dv.setUint16(o4 + 18, 0);
  const total = hdr + 20;
  if (v4) {
    dv.setUint16(l3 + 2, total);
    u8[l3 + 8] = 64;
    dv.setUint16(l3 + 10, 0);
    dv.setUint16(l3 + 10, ~csumFold(csumAdd(u8, l3, hdr, 0)) & 0xffff);
    const sum = csumAdd(u8, o4, 20, ipv4PseudoSum(dv.getInt32(l3 + 12), dv.getInt32(l3 + 16), 6, 20));
    dv.setUint16(o4 + 16, ~csumFold(sum) & 0xffff);
  } else {
    dv.setUint16(l3 + 4, 20);
    u8[l3 + 7] = 64;
    const sum = csumAdd(u8, o4, 20, csumAdd(u8, l3 + 8, 32, 0) + 6 + 20);
    dv.setUint16(o4 + 16, ~csumFold(sum) & 0xffff);
  }
  p.len = total;
  return total;
}
