// Per-destination state shared by every thread (one Int32Array over a SharedArrayBuffer,
// indexed by stable destination id): the connection counts IPVS keeps on each ip_vs_dest
// and the OVERLOAD flag its thresholds set. Writers are the data-plane workers; the
// control thread reads for -L and id reuse.
//   [id*DS_STRIDE + DS_ACTIVE]    ActiveConn   (TCP entries in ESTABLISHED)
//   [id*DS_STRIDE + DS_INACTIVE]  InActConn    (every other entry, all UDP)
//   [id*DS_STRIDE + DS_PERSIST]   PersistConn  (persistence templates)
//   [id*DS_STRIDE + DS_FLAGS]     DEST_F_* bits
//   [id*DS_STRIDE + DS_UTHRESH]   -x upper threshold (0 = none), written by the control thread
//   [id*DS_STRIDE + DS_LTHRESH]   -y lower threshold
export const DS_ACTIVE = 0;
export const DS_INACTIVE = 1;
export const DS_PERSIST = 2;
export const DS_FLAGS = 3;
export const DS_UTHRESH = 4;
export const DS_LTHRESH = 5;
export const DS_STRIDE = 6;

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

/**
 * After a connection was bound to destination `id` (its count already raised): IPVS sets
 * OVERLOAD once active + inactive reaches the upper threshold, so at most u_threshold
 * connections go to it (ip_vs_bind_dest). Templates do not count.
 */
export function destBound(s: Int32Array, id: number): void {
  const b = id * DS_STRIDE;
  const u = s[b + DS_UTHRESH];
  if (u !== 0 && s[b + DS_ACTIVE] + s[b + DS_INACTIVE] >= u) s[b + DS_FLAGS] |= DEST_F_OVERLOAD;
}

/**
 * After a connection left destination `id` (count already lowered): IPVS's hysteresis
 * (ip_vs_unbind_dest) — below the lower threshold if one is set, else below 3/4 of the
 * upper one, else at once.
 */
export function destUnbound(s: Int32Array, id: number): void {
  const b = id * DS_STRIDE;
  if ((s[b + DS_FLAGS] & DEST_F_OVERLOAD) === 0) return;
  const n = s[b + DS_ACTIVE] + s[b + DS_INACTIVE];
  const l = s[b + DS_LTHRESH];
  const u = s[b + DS_UTHRESH];
  const clear = l !== 0 ? n < l : u !== 0 ? n * 4 < u * 3 : true;
  if (clear) s[b + DS_FLAGS] &= ~DEST_F_OVERLOAD;
}

/**
 * Control side, on add/edit of a destination: IPVS clears OVERLOAD when the new upper
 * threshold is 0 or larger than the old one (__ip_vs_update_dest), then stores both.
 */
export function destSetThresholds(s: Int32Array, id: number, upper: number, lower: number): void {
  const b = id * DS_STRIDE;
  if (upper === 0 || upper > s[b + DS_UTHRESH]) s[b + DS_FLAGS] &= ~DEST_F_OVERLOAD;
  s[b + DS_UTHRESH] = upper;
  s[b + DS_LTHRESH] = lower;
}
