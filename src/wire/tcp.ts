// TCP header (RFC 9293 §3.1). Offsets relative to the TCP header start.
// Contract: tcpCheck() before any accessor.
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |          Source Port          |       Destination Port        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                        Sequence Number                        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                    Acknowledgment Number                      |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |  Data |       |C|E|U|A|P|R|S|F|                               |
//   | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |           Checksum            |         Urgent Pointer        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
import { DROP } from "./drop.ts";

export const TCP_MIN_LEN = 20;
export const TCP_SPORT = 0;
export const TCP_DPORT = 2;
export const TCP_SEQ = 4;
export const TCP_ACK = 8;
export const TCP_OFF = 12;
export const TCP_FLAGS = 13;
export const TCP_CSUM = 16;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACKF = 0x10;

/** 0 if a TCP header fits in `avail` bytes at `o` and its data offset is sane, else a DropReason. */
export function tcpCheck(u8: Uint8Array, o: number, avail: number): number {
  if (avail < TCP_MIN_LEN) return DROP.TRUNCATED;
  const off = (u8[o + TCP_OFF] >> 4) << 2;
  if (off < TCP_MIN_LEN || off > avail) return DROP.BAD_L4_HEADER;
  return 0;
}
export function tcpFlags(u8: Uint8Array, o: number): number {
  return u8[o + TCP_FLAGS];
}

/** The MSS option's value of the TCP header at u8[o] (options well-formed up to it), or 0 when it has none. */
export function tcpMssOption(u8: Uint8Array, o: number): number {
  const end = o + ((u8[o + TCP_OFF] >> 4) << 2);
  let at = o + TCP_MIN_LEN;
  while (at < end) {
    const kind = u8[at];
    if (kind === 0) return 0;
    if (kind === 1) { at++; continue; }
    if (at + 1 >= end) return 0;
    const len = u8[at + 1];
    if (len < 2 || at + len > end) return 0;
    if (kind === 2 && len === 4) return (u8[at + 2] << 8) | u8[at + 3];
    at += len;
  }
  return 0;
}
