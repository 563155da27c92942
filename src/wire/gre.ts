// GRE header: RFC 2784 §2 (base header, optional checksum) with the RFC 2890 §2 key and
// sequence-number extensions, as Linux parses them (net/ipv4/gre_demux.c gre_parse_header).
// Offsets are relative to the GRE header start. Pure: no state, no allocation.
// Contract: greCheck() before greHeaderLen/greProto/greCsumOk; greWrite* trust their caller.
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |C|R|K|S|     Reserved0       | Ver |         Protocol Type         |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |      Checksum (optional)      |       Reserved1 (optional)    |   C = 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                         Key (optional)                        |   K = 1 (RFC 2890)
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                 Sequence Number (optional)                    |   S = 1 (RFC 2890)
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// R (routing, RFC 1701) and any version other than 0 are rejected, as Linux does. The
// checksum (RFC 2784 §2.5) is the Internet checksum of the GRE header and its payload,
// with no pseudo header. IPVS sends only the base header and, with --tun-csum, the checksum.
import { csumAdd, csumFold } from "./checksum.ts";
import { DROP } from "./drop.ts";

/** IP protocol number of GRE (IANA). */
export const IPPROTO_GRE = 47;
/** GRE protocol types (EtherType values, RFC 2784 §2.4) of the payloads tslb carries. */
export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;

export const GRE_HDR_LEN = 4;
/** Base header plus the checksum word. */
export const GRE_CSUM_HDR_LEN = 8;
export const GRE_FLAGS = 0;
export const GRE_PROTO = 2;
export const GRE_CSUM = 4;

/** Bits of the first 16-bit word. */
export const GRE_F_CSUM = 0x8000;
export const GRE_F_ROUTING = 0x4000;
export const GRE_F_KEY = 0x2000;
export const GRE_F_SEQ = 0x1000;
export const GRE_VERSION_MASK = 0x0007;

/**
 * 0 if a GRE header can be read at `o` with `avail` bytes (the header and its payload)
 * and it is a version-0 header without routing, else a DropReason. A checksum, when
 * present, is verified over [o, o+avail).
 */
export function greCheck(u8: Uint8Array, o: number, avail: number): number {
  if (avail < GRE_HDR_LEN) return DROP.TRUNCATED;
  const flags = (u8[o] << 8) | u8[o + 1];
  if ((flags & (GRE_F_ROUTING | GRE_VERSION_MASK)) !== 0) return DROP.BAD_TUNNEL_HEADER;
  if (greHeaderLen(u8, o) > avail) return DROP.TRUNCATED;
  if ((flags & GRE_F_CSUM) !== 0 && csumFold(csumAdd(u8, o, avail, 0)) !== 0xffff) return DROP.BAD_TUNNEL_HEADER;
  return 0;
}

/** 4 plus 4 for each of the checksum, key and sequence fields present. */
export function greHeaderLen(u8: Uint8Array, o: number): number {
  const f = u8[o];
  return GRE_HDR_LEN + ((f & 0x80) >> 5) + ((f & 0x20) >> 3) + ((f & 0x10) >> 2);
}
export function greFlags(u8: Uint8Array, o: number): number {
  return (u8[o] << 8) | u8[o + 1];
}
export function greProto(u8: Uint8Array, o: number): number {
  return (u8[o + GRE_PROTO] << 8) | u8[o + GRE_PROTO + 1];
}

/**
 * Writes a base GRE header (no checksum, key or sequence) for protocol `proto`. Returns
 * the header length (4).
 */
export function greWrite(u8: Uint8Array, o: number, proto: number): number {
  u8[o] = 0;
  u8[o + 1] = 0;
  u8[o + 2] = proto >>> 8;
  u8[o + 3] = proto & 0xff;
  return GRE_HDR_LEN;
}

/**
 * Writes a GRE header with the checksum field for protocol `proto` and fills the
 * checksum over the header and the `payloadLen` bytes that follow it. Returns 8.
 */
export function greWriteCsum(u8: Uint8Array, o: number, proto: number, payloadLen: number): number {
  return greWriteCsumSum(u8, o, proto, csumAdd(u8, o + GRE_CSUM_HDR_LEN, payloadLen, 0));
}

/**
 * As greWriteCsum, with the payload's one's-complement sum given by the caller (who may
 * know it without reading the payload). `payloadSum` < 2^30, unfolded is fine. Returns 8.
 */
export function greWriteCsumSum(u8: Uint8Array, o: number, proto: number, payloadSum: number): number {
  u8[o] = GRE_F_CSUM >>> 8;
  u8[o + 1] = 0;
  u8[o + 2] = proto >>> 8;
  u8[o + 3] = proto & 0xff;
  u8[o + 6] = 0; // Reserved1
  u8[o + 7] = 0;
  // The header's own words: C flag + protocol type (checksum and reserved1 count as 0).
  const c = ~csumFold(GRE_F_CSUM + proto + payloadSum) & 0xffff;
  u8[o + GRE_CSUM] = c >>> 8;
  u8[o + GRE_CSUM + 1] = c & 0xff;
  return GRE_CSUM_HDR_LEN;
}
