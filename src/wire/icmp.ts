// ICMP (RFC 792) and ICMPv6 (RFC 4443) errors: the part of them a load balancer cares
// about — the quoted ("inner") packet of an error about one of its connections.
//
//    0                   1                   2                   3
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |     Type      |     Code      |          Checksum             |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |       unused / next-hop MTU / pointer (4 bytes)               |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |      Internet Header + leading octets of the original datagram |
import { csumAdd, csumFold } from "./checksum.ts";

export const ICMP_HDR_LEN = 8;
export const ICMP_CSUM = 2;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_FRAG_NEEDED = 4; // code of DEST_UNREACH
export const ICMP_PORT_UNREACH = 3; // code of DEST_UNREACH

export const ICMPV6_DEST_UNREACH = 1;
export const ICMPV6_PKT_TOOBIG = 2;
export const ICMPV6_TIME_EXCEED = 3;
export const ICMPV6_PARAMPROB = 4;

/** The ICMP types IPVS relates to connections (ip_vs_in_icmp): unreachable, source quench, time exceeded. */
export function icmpIsError(type: number): boolean {
  return type === ICMP_DEST_UNREACH || type === ICMP_SOURCE_QUENCH || type === ICMP_TIME_EXCEEDED;
}
/** ICMPv6: every type below 128 is an error (RFC 4443 §2.1). */
export function icmp6IsError(type: number): boolean {
  return type < 128;
}

/** Recomputes an ICMPv4 checksum over the message at `o` of `len` bytes. */
export function icmpFillCsum(u8: Uint8Array, dv: DataView, o: number, len: number): void {
  dv.setUint16(o + ICMP_CSUM, 0);
  dv.setUint16(o + ICMP_CSUM, ~csumFold(csumAdd(u8, o, len, 0)) & 0xffff);
}

/** Recomputes an ICMPv6 checksum (pseudo-header: addresses at `ip6`, length, next header 58). */
export function icmp6FillCsum(u8: Uint8Array, dv: DataView, ip6: number, o: number, len: number): void {
  dv.setUint16(o + ICMP_CSUM, 0);
  const acc = csumAdd(u8, ip6 + 8, 32, 0) + 58 + len;
  dv.setUint16(o + ICMP_CSUM, ~csumFold(csumAdd(u8, o, len, acc)) & 0xffff);
}

/** True when the ICMPv4 checksum of the message verifies. */
export function icmpCsumOk(u8: Uint8Array, o: number, len: number): boolean {
  return csumFold(csumAdd(u8, o, len, 0)) === 0xffff;
}
