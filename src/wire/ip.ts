// What every IP packet has, whatever its version: the length (IPv4 total length with its
// header checksum, IPv6 payload length), the pseudo-header sum of the transport checksum,
// the flow's addresses and ports; and big-endian field accessors. For code that rewrites,
// grows or joins packets in place (the PROXY header, segmentation, the write joiners).
// Byte arithmetic on the Uint8Array: callers hold no DataView, and none is made.
import { csumAdd, csumReplace16, ipv4PseudoSum } from "./checksum.ts";
import { IPV6_HDR_LEN } from "./ipv6.ts";

/** Sets the length of the IP packet at u8[l3] to `total` bytes (IPv4 header checksum patched). */
export function ipSetTotalLength(u8: Uint8Array, l3: number, total: number): void {
  if (u8[l3] >> 4 === 4) {
    const old = (u8[l3 + 2] << 8) | u8[l3 + 3];
    put16(u8, l3 + 2, total);
    put16(u8, l3 + 10, csumReplace16((u8[l3 + 10] << 8) | u8[l3 + 11], old, total));
  } else {
    put16(u8, l3 + 4, total - IPV6_HDR_LEN);
  }
}

/**
 * The unfolded pseudo-header sum for `l4len` bytes of protocol `proto` in the IP packet
 * at u8[l3] (IPv6: the header's destination; no routing header on these paths).
 */
export function ipPseudoSum(u8: Uint8Array, l3: number, proto: number, l4len: number): number {
  return u8[l3] >> 4 === 4
    ? ipv4PseudoSum(get32(u8, l3 + 12), get32(u8, l3 + 16), proto, l4len)
    : csumAdd(u8, l3 + 8, 32, 0) + proto + l4len;
}

/**
 * Whether the IP packets at u8[a] and u8[b] — IPv4 without options, or IPv6 with the
 * transport header right after the fixed one — carry the same addresses and ports.
 */
export function sameAddrsAndPorts(u8: Uint8Array, a: number, b: number, v4: boolean): boolean {
  const end = v4 ? 24 : 44;
  for (let i = v4 ? 12 : 8; i < end; i++) if (u8[a + i] !== u8[b + i]) return false;
  return true;
}

/** Big-endian 16-bit field accessors on a byte array (no DataView needed). */
export function get16(u8: Uint8Array, at: number): number {
  return (u8[at] << 8) | u8[at + 1];
}
export function put16(u8: Uint8Array, at: number, v: number): void {
  u8[at] = (v >>> 8) & 0xff;
  u8[at + 1] = v & 0xff;
}
/** Big-endian 32-bit field as an int32 (`>>> 0` for the unsigned value), and its writer. */
export function get32(u8: Uint8Array, at: number): number {
  return (u8[at] << 24) | (u8[at + 1] << 16) | (u8[at + 2] << 8) | u8[at + 3];
}
export function put32(u8: Uint8Array, at: number, v: number): void {
  u8[at] = (v >>> 24) & 0xff;
  u8[at + 1] = (v >>> 16) & 0xff;
  u8[at + 2] = (v >>> 8) & 0xff;
  u8[at + 3] = v & 0xff;
}
