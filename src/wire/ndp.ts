// IPv6 neighbour discovery (RFC 4861 §4.3–4.4): the two messages direct routing needs,
// neighbour solicitation (135) and advertisement (136), with the link-layer address options.
//
//   NS: type 135 | code 0 | checksum | reserved (4) | target address (16) | options
//   NA: type 136 | code 0 | checksum | R S O flags + reserved (4) | target address (16) | options
//   option: type (1: source link-layer, 2: target link-layer) | length 1 (8 octets) | MAC (6)
import { macHi, macLo, macWrite } from "./ethernet.ts";

export const NDP_NS = 135;
export const NDP_NA = 136;
export const NDP_TARGET = 8;
export const NDP_OPTS = 24;
export const NDP_MIN_LEN = 24;
export const NDP_OPT_SLLA = 1;
export const NDP_OPT_TLLA = 2;
/** NA flags: solicited and override. */
export const NA_SOLICITED = 0x40000000;
export const NA_OVERRIDE = 0x20000000;

/**
 * The MAC in the first link-layer address option of kind `kind` in the NDP message at
 * [o, end), as [found, hi, lo] written into `out` (no allocation). Returns true if found.
 */
export function ndpFindLla(dv: DataView, o: number, end: number, kind: number, out: Int32Array): boolean {
  let at = o + NDP_OPTS;
  while (at + 8 <= end) {
    const len = dv.getUint8(at + 1) << 3;
    if (len === 0) return false; // RFC 4861 §4.6: a zero length is invalid
    if (dv.getUint8(at) === kind && len >= 8) {
      out[0] = macHi(dv, at + 2);
      out[1] = macLo(dv, at + 2);
      return true;
    }
    at += len;
  }
  return false;
}

/** Writes an NDP option with a MAC at `at` (8 bytes). */
export function ndpWriteLla(dv: DataView, at: number, kind: number, hi: number, lo: number): void {
  dv.setUint8(at, kind);
  dv.setUint8(at + 1, 1);
  macWrite(dv, at + 2, hi, lo);
}
