// Per-destination state shared by every thread (one Int32Array over a SharedArrayBuffer,
// indexed by stable destination id): the connection counts IPVS keeps on each ip_vs_dest
// and the OVERLOAD flag its thresholds set. Writers are the data-plane workers; the
// control thread reads for -L and id reuse.
//   [id*DS_STRIDE + DS_ACTIVE]    ActiveConn   (TCP entries in ESTABLISHED)
//   [id*DS_STRIDE + DS_INACTIVE]  InActConn    (every other entry, all UDP)
//   [id*DS_STRIDE + DS_PERSIST]   PersistConn  (persistence templates)
//   [id*DS_STRIDE + DS_FLAGS]     DEST_F_* bits
export const DS_ACTIVE = 0;
export const DS_INACTIVE = 1;
export const DS_PERSIST = 2;
export const DS_FLAGS = 3;
export const DS_STRIDE = 4;

/** Set by the -x/-y thresholds (IP_VS_DEST_F_OVERLOAD): every scheduler skips the destination. */
export const DEST_F_OVERLOAD = 2;

export function allocDestState(maxDests: number): SharedArrayBuffer {
  return new SharedArrayBuffer(maxDests * DS_STRIDE * 4);
}

/** True when no entry (connection or template) still counts against destination `id`. */
export function destIdle(s: Int32Array, id: number): boolean {
  const b = id * DS_STRIDE;
  return s[b + DS_ACTIVE] === 0 && s[b + DS_INACTIVE] === 0 && s[b + DS_PERSIST] === 0;
}
