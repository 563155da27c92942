// Ethernet II header (IEEE 802.3 / RFC 894): what a TAP device carries. MAC addresses
// are handled as a 16-bit high part and a 32-bit low part so they stay in the int32 domain.
// Contract: the caller checks that 14 bytes are there (ETH_HDR_LEN) before any accessor.
//
//   +-------------------+-------------------+-----------+
//   | destination (6)   | source (6)        | type (2)  |
//   +-------------------+-------------------+-----------+

export const ETH_HDR_LEN = 14;
export const ETH_DST = 0;
export const ETH_SRC = 6;
export const ETH_TYPE = 12;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;

export function ethType(dv: DataView, o: number): number {
  return dv.getUint16(o + ETH_TYPE);
}

/** Writes a 6-byte MAC (hi: top 16 bits, lo: low 32 bits) at `at`. */
export function macWrite(dv: DataView, at: number, hi: number, lo: number): void {
  dv.setUint16(at, hi);
  dv.setInt32(at + 2, lo);
}
export function macHi(dv: DataView, at: number): number {
  return dv.getUint16(at);
}
export function macLo(dv: DataView, at: number): number {
  return dv.getInt32(at + 2);
}

/** Writes a whole Ethernet header at `o`. */
export function ethWrite(dv: DataView, o: number, dstHi: number, dstLo: number, srcHi: number, srcLo: number, type: number): void {
  macWrite(dv, o + ETH_DST, dstHi, dstLo);
  macWrite(dv, o + ETH_SRC, srcHi, srcLo);
  dv.setUint16(o + ETH_TYPE, type);
}

/** "02:00:5e:10:00:01" (control plane and tests only). */
export function macText(hi: number, lo: number): string {
  const b = [hi >>> 8, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff];
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}
