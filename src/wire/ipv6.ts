// IPv6 header (RFC 8200 §3) and the extension headers the data path must walk.
// Offsets are relative to the header start; addresses are four int32 words.
// Contract: call ipv6Check() once before any accessor; accessors do not bounds-check.
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |Version| Traffic Class |           Flow Label                  |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |         Payload Length        |  Next Header  |   Hop Limit   |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                         Source Address (128 bits)             |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                      Destination Address (128 bits)           |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
import { DROP } from "./drop.ts";

export const IPV6_HDR_LEN = 40;
export const IPV6_PAYLOAD_LEN = 4;
export const IPV6_NEXT = 6;
export const IPV6_HOP_LIMIT = 7;
export const IPV6_SRC = 8;
export const IPV6_DST = 24;

// Next-header values (IANA): the extension headers walked to find the transport header.
export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_IPV6_ROUTE = 43;
export const IPPROTO_IPV6_FRAG = 44;
export const IPPROTO_IPV6_DSTOPTS = 60;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_IPV6_NONXT = 59;

/** 0 if an IPv6 header fits at `o` in `avail` bytes and its payload length fits too, else a DropReason. */
export function ipv6Check(u8: Uint8Array, o: number, avail: number): number {
  if (avail < IPV6_HDR_LEN) return DROP.TRUNCATED;
  const plen = (u8[o + IPV6_PAYLOAD_LEN] << 8) | u8[o + IPV6_PAYLOAD_LEN + 1];
  // Payload length 0 means a jumbogram (RFC 2675): not on this path.
  if (plen === 0 || IPV6_HDR_LEN + plen > avail) return DROP.BAD_IP_HEADER;
  return 0;
}

export function ipv6PayloadLen(dv: DataView, o: number): number {
  return dv.getUint16(o + IPV6_PAYLOAD_LEN);
}
export function ipv6Next(u8: Uint8Array, o: number): number {
  return u8[o + IPV6_NEXT];
}
/** Word w (0–3) of the source address. */
export function ipv6SrcWord(dv: DataView, o: number, w: number): number {
  return dv.getInt32(o + IPV6_SRC + w * 4);
}
export function ipv6DstWord(dv: DataView, o: number, w: number): number {
  return dv.getInt32(o + IPV6_DST + w * 4);
}

/** True for the extension headers with the generic (next, length-in-8-octets) layout that may be skipped. */
export function ipv6SkippableExt(next: number): boolean {
  return next === IPPROTO_HOPOPTS || next === IPPROTO_IPV6_ROUTE || next === IPPROTO_IPV6_DSTOPTS;
}
