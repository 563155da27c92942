// UDP header (RFC 768). Offsets relative to the UDP header start.
// Contract: udpCheck() before any accessor.
//
//    0      7 8     15 16    23 24    31
//   +--------+--------+--------+--------+
//   |     Source      |   Destination   |
//   |      Port       |      Port       |
//   +--------+--------+--------+--------+
//   |     Length      |    Checksum     |
//   +--------+--------+--------+--------+
import { DROP } from "./drop.ts";

export const UDP_HDR_LEN = 8;
export const UDP_SPORT = 0;
export const UDP_DPORT = 2;
export const UDP_LEN = 4;
export const UDP_CSUM = 6;

/** 0 if a UDP header fits and its length field agrees with the IP payload size, else a DropReason. */
export function udpCheck(u8: Uint8Array, o: number, avail: number): number {
  if (avail < UDP_HDR_LEN) return DROP.TRUNCATED;
  const len = (u8[o + UDP_LEN] << 8) | u8[o + UDP_LEN + 1];
  if (len < UDP_HDR_LEN || len > avail) return DROP.BAD_L4_HEADER;
  return 0;
}
