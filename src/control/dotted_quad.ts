// Canonical IPv4 text read by character codes. The rules keep addresses as the text
// formatIPv4 writes; restores, listings and compiling read a hundred thousand of them,
// and inet_aton's general parser (wire/addr.ts parseIPv4) was a tenth of each.

/**
 * The address in s[from, end) when that is a canonical dotted quad (four parts 0-255,
 * no leading zeros: the text formatIPv4 writes, so parseIPv4 reads it as this value), as
 * int32; null for any other text.
 */
export function dottedQuad(s: string, end = s.length, from = 0): number | null {
  let addr = 0;
  let parts = 0;
  let i = from;
  while (parts < 4) {
    const start = i;
    let v = 0;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + c - 48;
      i++;
    }
    const n = i - start;
    if (n === 0 || n > 3 || v > 255 || (n > 1 && s.charCodeAt(start) === 48)) return null;
    addr = addr * 256 + v;
    parts++;
    if (parts < 4) {
      if (i >= end || s.charCodeAt(i) !== 46) return null;
      i++;
    }
  }
  return i === end ? addr | 0 : null;
}
