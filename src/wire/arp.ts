// ARP for IPv4 over Ethernet (RFC 826). Offsets relative to the ARP header.
// Contract: arpCheck() before any accessor.
//
//   hardware type (2) = 1 | protocol type (2) = 0x0800 | hlen (1) = 6 | plen (1) = 4 | op (2)
//   sender MAC (6) | sender IPv4 (4) | target MAC (6) | target IPv4 (4)
import { DROP } from "./drop.ts";
import { macWrite } from "./ethernet.ts";

export const ARP_LEN = 28;
export const ARP_OP = 6;
export const ARP_SHA = 8;
export const ARP_SPA = 14;
export const ARP_THA = 18;
export const ARP_TPA = 24;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

/** 0 for an Ethernet/IPv4 ARP packet that fits in `avail`, else a DropReason. */
export function arpCheck(dv: DataView, o: number, avail: number): number {
  if (avail < ARP_LEN) return DROP.TRUNCATED;
  if (dv.getUint16(o) !== 1 || dv.getUint16(o + 2) !== 0x0800 || dv.getUint8(o + 4) !== 6 || dv.getUint8(o + 5) !== 4) return DROP.UNSUPPORTED_L3;
  return 0;
}
export function arpOp(dv: DataView, o: number): number {
  return dv.getUint16(o + ARP_OP);
}
export function arpSpa(dv: DataView, o: number): number {
  return dv.getInt32(o + ARP_SPA);
}
export function arpTpa(dv: DataView, o: number): number {
  return dv.getInt32(o + ARP_TPA);
}

/** Writes a whole ARP packet for Ethernet/IPv4 at `o`. */
export function arpWrite(dv: DataView, o: number, op: number, shaHi: number, shaLo: number, spa: number, thaHi: number, thaLo: number, tpa: number): void {
  dv.setUint16(o, 1);
  dv.setUint16(o + 2, 0x0800);
  dv.setUint8(o + 4, 6);
  dv.setUint8(o + 5, 4);
  dv.setUint16(o + ARP_OP, op);
  macWrite(dv, o + ARP_SHA, shaHi, shaLo);
  dv.setInt32(o + ARP_SPA, spa);
  macWrite(dv, o + ARP_THA, thaHi, thaLo);
  dv.setInt32(o + ARP_TPA, tpa);
}
