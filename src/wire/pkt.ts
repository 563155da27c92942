// Pkt: what parsing learned about the current packet. ONE instance per worker,
// overwritten for every packet, so no stage allocates and no stage re-parses
// (Katran's packet_description). Offsets are absolute indexes into the Frame.
import { DROP } from "./drop.ts";
import type { Frame } from "./frame.ts";
import { IPPROTO_TCP, IPPROTO_UDP, ipv4Check, ipv4IsFragment } from "./ipv4.ts";
import { IPPROTO_IPV6_FRAG, IPV6_DST, IPV6_HDR_LEN, IPV6_NEXT, IPV6_SRC, ipv6Check, ipv6SkippableExt } from "./ipv6.ts";
import { TCP_CSUM, TCP_FLAGS, tcpCheck } from "./tcp.ts";
import { UDP_CSUM, udpCheck } from "./udp.ts";

export const FRAG_NONE = 0;
export const FRAG_FIRST = 1;
export const FRAG_LATER = 2;

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
  /** FRAG_NONE, FRAG_FIRST (offset 0, more to come: has the ports) or FRAG_LATER (no L4 header). */
  frag = 0;
  /** Fragment identification (IPv4 16 bits, IPv6 32 bits) when frag != 0. */
  fragId = 0;
  // Offload state from an offloading TUN's virtio_net_hdr (wire/vnet.ts), set by the
  // reader before process() and 0 for every other device. The pipeline keeps it true to
  // the packet it outputs: a path that cannot carry it completes the checksum (or asks
  // for segmentation) and clears it.
  /** 1: the transport checksum field holds the pseudo-header sum, to be completed downstream. */
  csumPartial = 0;
  /** Absolute offsets where the partial checksum starts and of its field. */
  csumStart = 0;
  csumAt = 0;
  /** virtio gso_type (0: an ordinary packet) and segment size of a TCP super-packet. */
  gsoType = 0;
  gsoSize = 0;
}

/**
 * Parses an IPv4 or IPv6 packet at frame[start, start+len) into `p` (IPv6 extension
 * headers are walked; a fragment header is DROP.FRAGMENT).
 * Returns 0 (TCP or UDP, ports valid), DROP.UNSUPPORTED_L4 (a sane packet of another
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
  p.frag = FRAG_NONE;
  if (len < 1) return DROP.TRUNCATED;
  const ver = u8[start] >> 4;
  if (ver === 6) return parseIpv6(p, f, start, len);
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
  if (ipv4IsFragment(dv, start)) {
    // A later fragment has no transport header: the pipeline finds its flow by fragment id.
    p.fragId = dv.getUint16(start + 4);
    p.l4 = start + ihl;
    if ((dv.getUint16(start + 6) & 0x1fff) !== 0) { p.frag = FRAG_LATER; return DROP.FRAGMENT; }
    p.frag = FRAG_FIRST;
  }
  return parseL4(p, u8, start + ihl, total - ihl);
}

/** Most extension headers walked before giving up (a chain longer than this is abuse). */
const MAX_EXT_HEADERS = 8;

function parseIpv6(p: Pkt, f: Frame, start: number, len: number): number {
  const u8 = f.u8;
  const dv = f.dv;
  const bad = ipv6Check(u8, start, len);
  if (bad !== 0) return bad;
  const total = IPV6_HDR_LEN + ((u8[start + 4] << 8) | u8[start + 5]);
  p.len = total;
  p.ipv = 6;
  p.src0 = dv.getInt32(start + IPV6_SRC); p.src1 = dv.getInt32(start + IPV6_SRC + 4);
  p.src2 = dv.getInt32(start + IPV6_SRC + 8); p.src3 = dv.getInt32(start + IPV6_SRC + 12);
  p.dst0 = dv.getInt32(start + IPV6_DST); p.dst1 = dv.getInt32(start + IPV6_DST + 4);
  p.dst2 = dv.getInt32(start + IPV6_DST + 8); p.dst3 = dv.getInt32(start + IPV6_DST + 12);
  const end = start + total;
  let next = u8[start + IPV6_NEXT];
  let off = start + IPV6_HDR_LEN;
  for (let n = 0; n < MAX_EXT_HEADERS && ipv6SkippableExt(next); n++) {
    if (off + 8 > end) return DROP.TRUNCATED;
    next = u8[off];
    off += (u8[off + 1] + 1) << 3;
  }
  if (off > end || ipv6SkippableExt(next)) return DROP.BAD_IP_HEADER;
  if (next === IPPROTO_IPV6_FRAG) {
    // RFC 8200 §4.5: next header, reserved, offset (13 bits) | M, identification (32 bits).
    if (off + 8 > end) return DROP.TRUNCATED;
    p.fragId = dv.getInt32(off + 4);
    const offset = dv.getUint16(off + 2) >>> 3;
    next = u8[off];
    off += 8;
    p.proto = next;
    p.l4 = off;
    if (offset !== 0) { p.frag = FRAG_LATER; return DROP.FRAGMENT; }
    p.frag = FRAG_FIRST;
  }
  p.proto = next;
  return parseL4(p, u8, off, end - off);
}

/** TCP/UDP ports, flags and checksum offset at `l4` with `avail` bytes of transport data. */
function parseL4(p: Pkt, u8: Uint8Array, l4: number, avail: number): number {
  p.l4 = l4;
  if (p.proto === IPPROTO_TCP) {
    const r = tcpCheck(u8, l4, avail);
    if (r !== 0) return r;
    p.tcpFlags = u8[l4 + TCP_FLAGS];
    p.l4csum = l4 + TCP_CSUM;
  } else if (p.proto === IPPROTO_UDP) {
    // A first fragment holds only part of the datagram the UDP length field describes.
    const r = p.frag === FRAG_FIRST ? (avail < 8 ? DROP.TRUNCATED : 0) : udpCheck(u8, l4, avail);
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
