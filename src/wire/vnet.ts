// struct virtio_net_hdr (include/uapi/linux/virtio_net.h): the 10 bytes in front of every
// packet on a TUN opened with IFF_VNET_HDR. With TUNSETOFFLOAD the kernel hands tslb
// TCP super-packets of up to 64 KiB (GSO) and packets whose transport checksum is left
// for later (NEEDS_CSUM: the field holds the pseudo-header sum, not complemented, and the
// kernel completes it over [csum_start, end) when the packet leaves). A TUN's header is in
// the host's byte order (legacy virtio; x86 and arm64 are little-endian).
// Pure and allocation-free.
import type { Pkt } from "./pkt.ts";

export const VNET_HDR_LEN = 10;

/** flags */
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;

/** gso_type */
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_UDP_L4 = 5;
export const VNET_GSO_ECN = 0x80;

// Field offsets.
const FLAGS = 0;
const GSO_TYPE = 1;
const HDR_LEN = 2;
const GSO_SIZE = 4;
const CSUM_START = 6;
const CSUM_OFFSET = 8;

function get16le(u8: Uint8Array, at: number): number {
  return u8[at] | (u8[at + 1] << 8);
}
function put16le(u8: Uint8Array, at: number, v: number): void {
  u8[at] = v & 0xff;
  u8[at + 1] = (v >>> 8) & 0xff;
}

export function vnetFlags(u8: Uint8Array, h: number): number {
  return u8[h + FLAGS];
}
export function vnetGsoType(u8: Uint8Array, h: number): number {
  return u8[h + GSO_TYPE];
}
export function vnetGsoSize(u8: Uint8Array, h: number): number {
  return get16le(u8, h + GSO_SIZE);
}
export function vnetCsumStart(u8: Uint8Array, h: number): number {
  return get16le(u8, h + CSUM_START);
}
export function vnetCsumOffset(u8: Uint8Array, h: number): number {
  return get16le(u8, h + CSUM_OFFSET);
}

/** Writes a whole header at u8[h]. */
export function vnetWrite(
  u8: Uint8Array, h: number, flags: number, gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number,
): void {
  u8[h + FLAGS] = flags;
  u8[h + GSO_TYPE] = gsoType;
  put16le(u8, h + HDR_LEN, hdrLen);
  put16le(u8, h + GSO_SIZE, gsoSize);
  put16le(u8, h + CSUM_START, csumStart);
  put16le(u8, h + CSUM_OFFSET, csumOffset);
}

/**
 * The header of an ordinary packet (no GSO) whose transport checksum is partial: the sum
 * starts at `csumStart` and its field is `csumOffset` bytes further (header length: up
 * to the end of that field, as the kernel counts it).
 */
export function vnetWritePartial(u8: Uint8Array, h: number, csumStart: number, csumOffset: number): void {
  vnetWrite(u8, h, VNET_F_NEEDS_CSUM, VNET_GSO_NONE, csumStart + csumOffset + 2, 0, csumStart, csumOffset);
}

/**
 * The header in front of packet `p` (at p.start - VNET_HDR_LEN) that hands the kernel
 * what is left to do: nothing, a partial checksum, or a super-packet's segmentation
 * (whose header length runs to the end of its TCP header). Returns where it starts.
 */
export function vnetWriteFor(u8: Uint8Array, p: Pkt): number {
  const h = p.start - VNET_HDR_LEN;
  const cs = p.csumStart - p.start;
  if (p.csumPartial === 0) vnetWritePlain(u8, h);
  else if (p.gsoType === 0) vnetWritePartial(u8, h, cs, p.csumAt - p.csumStart);
  else vnetWrite(u8, h, VNET_F_NEEDS_CSUM, p.gsoType, cs + ((u8[p.csumStart + 12] >> 4) << 2), p.gsoSize, cs, p.csumAt - p.csumStart);
  return h;
}

/** A header that asks nothing of the kernel: the packet is complete. */
export function vnetWritePlain(u8: Uint8Array, h: number): void {
  for (let i = 0; i < VNET_HDR_LEN; i++) u8[h + i] = 0;
}
