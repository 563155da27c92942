// IPv4 header (RFC 791 §3.1). Offsets are relative to the header start; addresses stay
// int32 (getInt32) so comparisons and hashing never leave the small-integer domain.
// Contract: call ipv4Check() once before any accessor; accessors do not bounds-check.
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |Version|  IHL  |Type of Service|          Total Length         |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |         Identification        |Flags|      Fragment Offset    |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |  Time to Live |    Protocol   |         Header Checksum       |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                       Source Address                          |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                    Destination Address                        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
import { csumAdd, csumFold, csumReplace32 } from "./checksum.ts";
import { DROP } from "./drop.ts";

export const IPV4_MIN_LEN = 20;
export const IPV4_TOS = 1;
export const IPV4_TOTAL_LEN = 2;
export const IPV4_ID = 4;
export const IPV4_FRAG = 6;
export const IPV4_TTL = 8;
export const IPV4_PROTO = 9;
export const IPV4_CSUM = 10;
export const IPV4_SRC = 12;
export const IPV4_DST = 16;
/** More-fragments flag and offset mask of the flags/fragment-offset word. */
export const IPV4_MF = 0x2000;
export const IPV4_DF = 0x4000;
export const IPV4_OFFSET_MASK = 0x1fff;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/**
 * 0 if an IPv4 header can be read at `o` with `avail` bytes left and its own lengths are
 * consistent, else a DropReason. Verifies the header checksum (20–60 bytes: cheap).
 */
export function ipv4Check(u8: Uint8Array, o: number, avail: number): number {
  if (avail < IPV4_MIN_LEN) return DROP.TRUNCATED;
  const ihl = (u8[o] & 0x0f) << 2;
  if (ihl < IPV4_MIN_LEN) return DROP.BAD_IP_HEADER;
  const total = (u8[o + 2] << 8) | u8[o + 3];
  if (total < ihl || total > avail) return DROP.BAD_IP_HEADER;
  if (ihl === IPV4_MIN_LEN) {
    // Nearly every header: the ten words summed straight, no loop (about half the cost).
    const s = ((u8[o] << 8) | u8[o + 1]) + ((u8[o + 2] << 8) | u8[o + 3]) + ((u8[o + 4] << 8) | u8[o + 5]) +
      ((u8[o + 6] << 8) | u8[o + 7]) + ((u8[o + 8] << 8) | u8[o + 9]) + ((u8[o + 10] << 8) | u8[o + 11]) +
      ((u8[o + 12] << 8) | u8[o + 13]) + ((u8[o + 14] << 8) | u8[o + 15]) + ((u8[o + 16] << 8) | u8[o + 17]) +
      ((u8[o + 18] << 8) | u8[o + 19]);
    return csumFold(s) === 0xffff ? 0 : DROP.BAD_IP_CSUM;
  }
  if (csumFold(csumAdd(u8, o, ihl, 0)) !== 0xffff) return DROP.BAD_IP_CSUM;
  return 0;
}

export function ipv4HeaderLen(u8: Uint8Array, o: number): number {
  return (u8[o] & 0x0f) << 2;
}
export function ipv4TotalLen(dv: DataView, o: number): number {
  return dv.getUint16(o + IPV4_TOTAL_LEN);
}
export function ipv4Proto(u8: Uint8Array, o: number): number {
  return u8[o + IPV4_PROTO];
}
export function ipv4Src(dv: DataView, o: number): number {
  return dv.getInt32(o + IPV4_SRC);
}
export function ipv4Dst(dv: DataView, o: number): number {
  return dv.getInt32(o + IPV4_DST);
}
/** True for any fragment other than a whole datagram (MF set or a non-zero offset). */
export function ipv4IsFragment(dv: DataView, o: number): boolean {
  return (dv.getUint16(o + IPV4_FRAG) & (IPV4_MF | IPV4_OFFSET_MASK)) !== 0;
}

/** Writes the source address and patches the header checksum (RFC 1624). Returns the old address. */
export function ipv4SetSrcCsum(dv: DataView, o: number, addr: number): number {
  const old = dv.getInt32(o + IPV4_SRC);
  dv.setInt32(o + IPV4_SRC, addr);
  dv.setUint16(o + IPV4_CSUM, csumReplace32(dv.getUint16(o + IPV4_CSUM), old, addr));
  return old;
}

/** Writes the destination address and patches the header checksum. Returns the old address. */
export function ipv4SetDstCsum(dv: DataView, o: number, addr: number): number {
  const old = dv.getInt32(o + IPV4_DST);
  dv.setInt32(o + IPV4_DST, addr);
  dv.setUint16(o + IPV4_CSUM, csumReplace32(dv.getUint16(o + IPV4_CSUM), old, addr));
  return old;
}

/** Recomputes the header checksum from scratch (packet building and tests only). */
export function ipv4FillCsum(u8: Uint8Array, dv: DataView, o: number): void {
  dv.setUint16(o + IPV4_CSUM, 0);
  dv.setUint16(o + IPV4_CSUM, ~csumFold(csumAdd(u8, o, ipv4HeaderLen(u8, o), 0)) & 0xffff);
}
