// Internet checksum maths: RFC 1071 full sums and RFC 1624 incremental updates.
// Pure and allocation-free. Inputs are int32-safe numbers; results are 16-bit values.
// The NAT path never recomputes a checksum: it patches it where it writes a field
// (gVisor's ...WithChecksumUpdate setters), so cost is independent of packet size.

/** Folds a 32-bit one's-complement accumulator to 16 bits (not complemented). */
export function csumFold(sum: number): number {
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return sum & 0xffff;
}

/**
 * One's-complement sum of u8[off, off+len) added to `acc` (unfolded, < 2^31 for any
 * packet up to 64 KiB). Odd lengths are padded with a zero byte, as RFC 1071 says.
 */
export function csumAdd(u8: Uint8Array, off: number, len: number, acc: number): number {
  const end = off + (len & ~1);
  let i = off;
  for (; i < end; i += 2) acc += (u8[i] << 8) | u8[i + 1];
  if (len & 1) acc += u8[i] << 8;
  // Fold early so the accumulator stays far below 2^32 for the caller's next add.
  return (acc & 0xffff) + (acc >>> 16);
}

/** The checksum field value over u8[off, off+len) (complemented, 16 bits). */
export function csumCompute(u8: Uint8Array, off: number, len: number): number {
  return ~csumFold(csumAdd(u8, off, len, 0)) & 0xffff;
}

/**
 * RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for one 16-bit word changing from `old` to `now`.
 * Never yields 0xffff from a valid input sum except as the one's-complement "-0", which
 * receivers treat as equal to 0 — exactly what the RFC's equation 3 was chosen for.
 */
export function csumReplace16(csum: number, old: number, now: number): number {
  let s = (~csum & 0xffff) + (~old & 0xffff) + (now & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** RFC 1624 for a 32-bit field (an IPv4 address) changing from `old` to `now`, both int32. */
export function csumReplace32(csum: number, old: number, now: number): number {
  let s = (~csum & 0xffff) + (~(old >>> 16) & 0xffff) + (~old & 0xffff) + ((now >>> 16) & 0xffff) + (now & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/**
 * RFC 1624 in two steps, for a rewrite that changes several fields under the same sums:
 * csumDelta32/csumDelta16 give each field's change (~old + new, per 16-bit word,
 * unfolded: a few of them add up far below 2^31), csumApply folds their sum into a
 * checksum once. The result equals the csumReplace chain (a change of nothing adds
 * 0xffff, one's-complement zero).
 */
export function csumDelta32(old: number, now: number): number {
  return (~(old >>> 16) & 0xffff) + (~old & 0xffff) + ((now >>> 16) & 0xffff) + (now & 0xffff);
}
export function csumDelta16(old: number, now: number): number {
  return (~old & 0xffff) + (now & 0xffff);
}
export function csumApply(csum: number, delta: number): number {
  let s = (~csum & 0xffff) + delta;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Sum of the IPv4 pseudo header (RFC 793 §3.1 / RFC 768): src, dst, zero+proto, L4 length. */
export function ipv4PseudoSum(src: number, dst: number, proto: number, l4len: number): number {
  return ((src >>> 16) & 0xffff) + (src & 0xffff) + ((dst >>> 16) & 0xffff) + (dst & 0xffff) + proto + l4len;
}
