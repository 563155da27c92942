// Pkt: what parsing learned about the current packet. ONE instance per worker,
// overwritten for every packet, so no stage allocates and no stage re-parses
// (Katran's packet_description). Offsets are absolute indexes into the Frame.
import { DROP } from "./drop.ts";
import type { Frame } from "./frame.ts";
import { IPPROTO_TCP, IPPROTO_UDP, ipv4Check, ipv4IsFragment } from "./ipv4.ts";
import { TCP_CSUM, TCP_FLAGS, tcpCheck } from "./tcp.ts";
import { UDP_CSUM, udpCheck } from "./udp.ts";

export class Pkt {
  /** Start and length of the IP packet in the frame (length from the IP header, padding trimmed). */
  start = 0;
  len = 0;
  l3 = 0;
  l4 = 0;
  /** Absolute offset of the L4 checksum field (TCP or UDP). */
  l4csum = 0;
  ipv = 0;
  proto = 0;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
  // Address words as int32, network order; IPv4 uses word 0 and leaves 1–3 at 0.
  src0 = 0; src1 = 0; src2 = 0; src3 = 0;
  dst0 = 0; dst1 = 0; dst2 = 0; dst3 = 0;
  /** Flow hash of (proto, src, sport, dst, dport) as the packet arrived. */
  hash = 0;
  /** Direction of the matched connection: 0 client→server, 1 server→client. */
  dir = 0;
  /** The table clock (seconds) for this packet; set by the pipeline, read by lblc/lblcr expiry. */
  now = 0;
  /** Firewall mark (int32), known from the device the packet was read on; 0 = none. */
  mark = 0;
}

/**
 * Parses an IP packet at frame[start, start+len) into `p`.
 * Returns 0 (TCP or UDP, ports valid), DROP.UNSUPPORTED_L4 (a sane IPv4 packet of another
 * protocol: addresses are filled, ports are 0), or another DropReason. Never throws.
 */
export function parseIp(p: Pkt, f: Frame, start: number, len: number): number {
  const u8 = f.u8;
  const dv = f.dv;
  p.start = start;
  p.len = len;
  p.l3 = start;
  p.sport = 0;
  p.dport = 0;
  p.tcpFlags = 0;
  if (len < 1) return DROP.TRUNCATED;
  const ver = u8[start] >> 4;
  if (ver !== 4) return DROP.UNSUPPORTED_L3;
  const bad = ipv4Check(u8, start, len);
  if (bad !== 0) return bad;
  const ihl = (u8[start] & 0x0f) << 2;
  const total = (u8[start + 2] << 8) | u8[start + 3];
  p.len = total;
  p.ipv = 4;
  p.proto = u8[start + 9];
  p.src0 = dv.getInt32(start + 12);
  p.dst0 = dv.getInt32(start + 16);
  p.src1 = 0; p.src2 = 0; p.src3 = 0;
  p.dst1 = 0; p.dst2 = 0; p.dst3 = 0;
  if (ipv4IsFragment(dv, start)) return DROP.FRAGMENT;
  const l4 = start + ihl;
  const avail = total - ihl;
  p.l4 = l4;
  if (p.proto === IPPROTO_TCP) {
    const r = tcpCheck(u8, l4, avail);
    if (r !== 0) return r;
    p.tcpFlags = u8[l4 + TCP_FLAGS];
    p.l4csum = l4 + TCP_CSUM;
  } else if (p.proto === IPPROTO_UDP) {
    const r = udpCheck(u8, l4, avail);
    if (r !== 0) return r;
    p.l4csum = l4 + UDP_CSUM;
  } else {
    return DROP.UNSUPPORTED_L4;
  }
  p.sport = (u8[l4] << 8) | u8[l4 + 1];
  // TCP and UDP share the port layout (source at 0, destination at 2).
  p.dport = (u8[l4 + 2] << 8) | u8[l4 + 3];
  return 0;
}
