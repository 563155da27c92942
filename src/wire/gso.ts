// What an offloading TUN leaves to the receiver, done in user space for the paths that
// cannot hand it back to the kernel (DR frames on the TAP, tunnel encapsulation, NAT46):
// completing a partial transport checksum, and cutting a TCP super-packet into the
// segments the sender's TSO would have made (wireguard-go's gsoSplit does the same).
// Pure and allocation-free: segments are copied with copyWithin inside one buffer.
import { csumAdd, csumFold } from "./checksum.ts";
import { get16, get32, ipPseudoSum, put16, put32 } from "./ip.ts";
import { IPPROTO_UDP } from "./ipv4.ts";
import { IPV6_HDR_LEN } from "./ipv6.ts";
import { TCP_CSUM, TCP_FIN, TCP_FLAGS, TCP_OFF, TCP_PSH, TCP_SEQ } from "./tcp.ts";

const TCP_CWR = 0x80;

/**
 * Completes a partial checksum: the field at u8[csumAt] holds the pseudo-header sum (not
 * complemented); the result covers u8[from, end) as the kernel's skb_checksum_help does.
 * A UDP result of 0 is sent as 0xffff (RFC 768: 0 means "no checksum").
 */
export function csumComplete(u8: Uint8Array, from: number, end: number, csumAt: number, proto: number): void {
  let c = ~csumFold(csumAdd(u8, from, end - from, 0)) & 0xffff;
  if (c === 0 && proto === IPPROTO_UDP) c = 0xffff;
  u8[csumAt] = c >>> 8;
  u8[csumAt + 1] = c & 0xff;
}

/**
 * Writes the partial form of the transport checksum of the IP packet at u8[l3] whose
 * transport header is at l4 and which ends at `end`: the folded pseudo-header sum over
 * the whole transport length (for a super-packet too: the kernel's TSO adjusts it per
 * segment). Called after a rewrite, it makes any incremental update of the field moot.
 */
export function csumSetPartial(u8: Uint8Array, l3: number, l4: number, end: number, csumAt: number, proto: number): void {
  const s = csumFold(ipPseudoSum(u8, l3, proto, end - l4));
  u8[csumAt] = s >>> 8;
  u8[csumAt + 1] = s & 0xff;
}

/** Segments a TCP super-packet with `payload` bytes makes at `mss` bytes each. */
export function gsoSegments(payload: number, mss: number): number {
  return mss <= 0 || payload <= 0 ? 1 : Math.ceil(payload / mss);
}

/**
 * Writes segment `k` of the TCP super-packet u8[l3, end) (transport header at l4, no
 * IPv6 extension headers) at u8[at] and returns its length. Headers are copied; the IPv4
 * identification advances by k, the sequence number by k·mss, FIN and PSH stay on the
 * last segment and CWR on the first, and both checksums are computed in full.
 * `at` must not overlap [l3, end).
 */
export function tcpGsoSegment(u8: Uint8Array, l3: number, l4: number, end: number, mss: number, k: number, at: number): number {
  const hdr = l4 - l3 + ((u8[l4 + TCP_OFF] >> 4) << 2);
  const payload = end - l3 - hdr;
  const n = gsoSegments(payload, mss);
  const from = l3 + hdr + k * mss;
  const chunk = k === n - 1 ? payload - k * mss : mss;
  u8.copyWithin(at, l3, l3 + hdr);
  u8.copyWithin(at + hdr, from, from + chunk);
  const len = hdr + chunk;
  const t = at + (l4 - l3);
  const v4 = u8[at] >> 4 === 4;
  if (v4) {
    put16(u8, at + 2, len);
    put16(u8, at + 4, (get16(u8, l3 + 4) + k) & 0xffff);
    put16(u8, at + 10, 0);
    put16(u8, at + 10, ~csumFold(csumAdd(u8, at, l4 - l3, 0)) & 0xffff);
  } else {
    put16(u8, at + 4, len - IPV6_HDR_LEN);
  }
  put32(u8, t + TCP_SEQ, get32(u8, l4 + TCP_SEQ) + k * mss);
  if (k !== n - 1) u8[t + TCP_FLAGS] &= ~(TCP_FIN | TCP_PSH);
  if (k !== 0) u8[t + TCP_FLAGS] &= ~TCP_CWR;
  put16(u8, t + TCP_CSUM, 0);
  const l4len = len - (l4 - l3);
  const sum = csumAdd(u8, t, l4len, ipPseudoSum(u8, at, 6, l4len));
  put16(u8, t + TCP_CSUM, ~csumFold(sum) & 0xffff);
  return len;
}
