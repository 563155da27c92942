// Generic UDP Encapsulation header (draft-ietf-intarea-gue §3; Linux include/net/gue.h),
// with Linux's private-flags extension and its remote checksum offload option
// (draft-herbert-remotecsumoffload). Offsets are relative to the GUE header, which follows
// the UDP header. Pure: no state, no allocation.
// Contract: gueCheck() before any accessor; gueWrite* trust their caller.
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |Ver|C|  Hlen   |  Proto/ctype  |        Standard flags       |P|
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   ~                Fields (Hlen 32-bit words)                     ~
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Ver 0: a GUE header follows; C = 1 marks a control message (proto/ctype is its type),
// else proto/ctype is the IP protocol of the payload (4: IPv4, 41: IPv6). Ver 1 (the
// first two bits 01) has no GUE header at all: the UDP payload is an IPv4 (0x4_) or IPv6
// (0x6_) packet ("direct IP encapsulation", the GUE draft §4).
//
// When P is set, the first option word holds private flags; Linux defines one,
// REMCSUM (bit 31), announcing a 4-byte option right after it:
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |R|                  private flags (R = REMCSUM)                |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |       Checksum start          |       Checksum offset         |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// Start and offset count from the first byte after the GUE header (the inner packet):
// the receiver sums [start, end) and stores the folded complement at offset, whose field
// holds the pseudo-header sum the sender left there (CHECKSUM_PARTIAL).
import { csumAdd, csumFold } from "./checksum.ts";
import { DROP } from "./drop.ts";

/** IP protocol numbers used as GUE proto/ctype (and as outer protocol for IPIP). */
export const IPPROTO_IPIP = 4;
export const IPPROTO_IPV6 = 41;

export const GUE_HDR_LEN = 4;
export const GUE_PROTO = 1;
export const GUE_FLAGS = 2;
/** Standard flag P: private flags are the first option word. */
export const GUE_FLAG_PRIV = 0x0001;
export const GUE_LEN_PRIV = 4;
/** Private flag REMCSUM (bit 31 of the private flags word). */
export const GUE_PFLAG_REMCSUM = 0x80000000 | 0;
export const GUE_PLEN_REMCSUM = 4;
/** GUE header with the private flags and the remote checksum option: 4 + 4 + 4. */
export const GUE_REMCSUM_HDR_LEN = GUE_HDR_LEN + GUE_LEN_PRIV + GUE_PLEN_REMCSUM;

/**
 * 0 if a GUE header (or a version-1 direct IP packet) can be read at `o` with `avail`
 * bytes of UDP payload, else a DropReason. Checks what Linux's validate_gue_flags checks:
 * version 0 or 1, no unknown standard or private flags, options within Hlen and within
 * the datagram. Control messages pass: the caller decides (gueControl).
 */
export function gueCheck(u8: Uint8Array, o: number, avail: number): number {
  if (avail < 1) return DROP.TRUNCATED;
  const ver = u8[o] >> 6;
  if (ver === 1) {
    const ipv = u8[o] >> 4;
    return ipv === 4 || ipv === 6 ? 0 : DROP.BAD_TUNNEL_HEADER;
  }
  if (ver !== 0) return DROP.BAD_TUNNEL_HEADER;
  if (avail < GUE_HDR_LEN) return DROP.TRUNCATED;
  const optLen = (u8[o] & 0x1f) << 2;
  if (GUE_HDR_LEN + optLen > avail) return DROP.TRUNCATED;
  const flags = (u8[o + GUE_FLAGS] << 8) | u8[o + GUE_FLAGS + 1];
  if ((flags & ~GUE_FLAG_PRIV) !== 0) return DROP.BAD_TUNNEL_HEADER;
  if ((flags & GUE_FLAG_PRIV) !== 0) {
    if (optLen < GUE_LEN_PRIV) return DROP.BAD_TUNNEL_HEADER;
    const p = gueReadU32(u8, o + GUE_HDR_LEN);
    if ((p & ~GUE_PFLAG_REMCSUM) !== 0) return DROP.BAD_TUNNEL_HEADER;
    if ((p & GUE_PFLAG_REMCSUM) !== 0 && optLen < GUE_LEN_PRIV + GUE_PLEN_REMCSUM) return DROP.BAD_TUNNEL_HEADER;
  }
  return 0;
}

function gueReadU32(u8: Uint8Array, o: number): number {
  return (u8[o] << 24) | (u8[o + 1] << 16) | (u8[o + 2] << 8) | u8[o + 3];
}

/** 0 for a GUE header, 1 for direct IP encapsulation (no GUE header). */
export function gueVersion(u8: Uint8Array, o: number): number {
  return u8[o] >> 6;
}
/** True for a control message (version 0 only). */
export function gueControl(u8: Uint8Array, o: number): boolean {
  return (u8[o] & 0x20) !== 0;
}
/** Bytes from `o` to the payload: 4 + 4 * Hlen for version 0, 0 for version 1. */
export function gueHeaderLen(u8: Uint8Array, o: number): number {
  return (u8[o] >> 6) === 1 ? 0 : GUE_HDR_LEN + ((u8[o] & 0x1f) << 2);
}
/** IP protocol of the payload: proto/ctype for version 0, from the IP version nibble for version 1. */
export function gueProto(u8: Uint8Array, o: number): number {
  if ((u8[o] >> 6) === 1) return (u8[o] >> 4) === 4 ? IPPROTO_IPIP : IPPROTO_IPV6;
  return u8[o + GUE_PROTO];
}
export function gueFlags(u8: Uint8Array, o: number): number {
  return (u8[o + GUE_FLAGS] << 8) | u8[o + GUE_FLAGS + 1];
}
/** Offset (from `o`) of the remote checksum option, or -1 when the header has none. */
export function gueRemcsumAt(u8: Uint8Array, o: number): number {
  if ((u8[o] >> 6) !== 0 || (gueFlags(u8, o) & GUE_FLAG_PRIV) === 0) return -1;
  return (gueReadU32(u8, o + GUE_HDR_LEN) & GUE_PFLAG_REMCSUM) !== 0 ? GUE_HDR_LEN + GUE_LEN_PRIV : -1;
}

/** Writes a 4-byte version-0 data header (Hlen 0, flags 0) for payload protocol `proto`. Returns 4. */
export function gueWrite(u8: Uint8Array, o: number, proto: number): number {
  u8[o] = 0;
  u8[o + 1] = proto;
  u8[o + 2] = 0;
  u8[o + 3] = 0;
  return GUE_HDR_LEN;
}

/**
 * Writes a version-0 header with the private flags word and the remote checksum option
 * (Hlen 2): `start` and `offset` are relative to the payload (see the file header).
 * Returns 12.
 */
export function gueWriteRemcsum(u8: Uint8Array, o: number, proto: number, start: number, offset: number): number {
  u8[o] = (GUE_LEN_PRIV + GUE_PLEN_REMCSUM) >> 2;
  u8[o + 1] = proto;
  u8[o + 2] = 0;
  u8[o + 3] = GUE_FLAG_PRIV;
  u8[o + 4] = 0x80; // GUE_PFLAG_REMCSUM
  u8[o + 5] = 0;
  u8[o + 6] = 0;
  u8[o + 7] = 0;
  u8[o + 8] = start >>> 8;
  u8[o + 9] = start & 0xff;
  u8[o + 10] = offset >>> 8;
  u8[o + 11] = offset & 0xff;
  return GUE_REMCSUM_HDR_LEN;
}

/**
 * The receiver's half of remote checksum offload (Linux remcsum_adjust): completes the
 * checksum of the payload at [p, p+len) from the option at `opt` (gueRemcsumAt). Returns
 * 0, or DROP.BAD_TUNNEL_HEADER when start/offset point outside the payload.
 */
export function gueRemcsumApply(u8: Uint8Array, opt: number, p: number, len: number): number {
  const start = (u8[opt] << 8) | u8[opt + 1];
  const offset = (u8[opt + 2] << 8) | u8[opt + 3];
  if (start > len || offset + 2 > len || offset < start) return DROP.BAD_TUNNEL_HEADER;
  const c = ~csumFold(csumAdd(u8, p + start, len - start, 0)) & 0xffff;
  u8[p + offset] = c >>> 8;
  u8[p + offset + 1] = c & 0xff;
  return 0;
}
