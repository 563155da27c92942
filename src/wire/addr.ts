// Address text <-> numbers, for the control plane and tests only (it allocates freely).
// Contract: IPv4 addresses are signed int32 (`|0`) holding the address in network bit
// order (198.18.0.1 -> 0xc6120001|0); IPv6 addresses are 4 such int32 words, most
// significant first. Parsers follow glibc: parseIPv4 = inet_aton (what ipvsadm uses for
// IPv4 addresses and masks), parseIPv6 = inet_pton(AF_INET6); formatIPv6 = inet_ntop, so
// canonical text is what ipvsadm prints. Parsers return null on bad input, never throw.
import type { Af } from "../control/model.ts";

const isSpace = (c: string) => c === " " || (c >= "\t" && c <= "\r");
const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";

/** The value of hex digit code `c`, or 99 for anything else (NaN past the end included). */
function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return 99;
}

/** Where the last atonPart() stopped (a second return value without a tuple per part). */
let atonEnd = 0;

// One part of an inet_aton address: strtoul(base 0) from `i`; returns the value and sets
// atonEnd. Character codes, not parseInt per character: a restore of 110 000 lines spent
// a quarter of its parse time here.
function atonPart(s: string, i: number): number {
  let base = 10;
  if (s.charCodeAt(i) === 48) {
    const x = s.charCodeAt(i + 1);
    if ((x === 120 || x === 88) && hexVal(s.charCodeAt(i + 2)) < 16) { base = 16; i += 2; }
    else base = 8;
  }
  let v = 0;
  let j = i;
  for (; j < s.length; j++) {
    const d = hexVal(s.charCodeAt(j));
    if (d >= base) break;
    v = v * base + d;
    if (v > 0xffffffff) v = Infinity; // strtoul ERANGE; keep scanning to the end of the digits
  }
  atonEnd = j;
  return v;
}

// Largest value of the last part, by how many parts came before it (a, a.b, a.b.c, a.b.c.d).
const ATON_MAX = [0xffffffff, 0xffffff, 0xffff, 0xff];

/** inet_aton: `a.b.c.d`, `a.b.c` (c 16 bits), `a.b` (b 24 bits), `a`; each part decimal,
 *  0x-hex or 0-octal. Like glibc, anything after a whitespace character is ignored. */
export function parseIPv4(text: string): number | null {
  const parts: number[] = [];
  let i = 0;
  let val = 0;
  for (;;) {
    if (!isDigit(text[i])) return null;
    val = atonPart(text, i);
    i = atonEnd;
    if (val > 0xffffffff) return null;
    if (text[i] !== ".") break;
    if (parts.length > 2 || val > 0xff) return null;
    parts.push(val);
    i++;
  }
  if (i < text.length && !isSpace(text[i])) return null;
  if (val > ATON_MAX[parts.length]) return null;
  let addr = val;
  for (let k = 0; k < parts.length; k++) addr += parts[k] * 2 ** (24 - 8 * k);
  return addr | 0;
}

export function formatIPv4(addr: number): string {
  return `${(addr >>> 24) & 255}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`;
}

/** inet_pton(AF_INET): exactly four decimal octets, no leading zeros, nothing else. */
export function parseIPv4Strict(text: string): number | null {
  if (!/^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$/.test(text)) return null;
  const o = text.split(".").map(Number);
  if (o.some((x) => x > 255)) return null;
  return ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) | 0;
}

/** inet_pton(AF_INET6): 8 groups, one `::` standing for at least one zero group, an
 *  optional dotted IPv4 tail; no brackets, no zone. */
export function parseIPv6(text: string): number[] | null {
  const g: number[] = []; // 16-bit groups
  let gap = -1;
  let i = 0;
  if (text.startsWith("::")) { gap = 0; i = 2; }
  else if (text.startsWith(":")) return null;
  while (i < text.length) {
    let j = i;
    while (j < text.length && /[0-9a-fA-F]/.test(text[j])) j++;
    if (text[j] === ".") {
      if (g.length > 6) return null;
      const v4 = parseIPv4Strict(text.slice(i));
      if (v4 === null) return null;
      g.push(v4 >>> 16, v4 & 0xffff);
      i = text.length;
      break;
    }
    if (j === i || j - i > 4 || g.length >= 8) return null;
    g.push(parseInt(text.slice(i, j), 16));
    i = j;
    if (i === text.length) break;
    if (text[i] !== ":") return null;
    i++;
    if (text[i] === ":") {
      if (gap >= 0) return null;
      gap = g.length;
      i++;
    } else if (i === text.length) return null; // a trailing single ':'
  }
  if (gap >= 0) {
    if (g.length >= 8) return null;
    g.splice(gap, 0, ...new Array(8 - g.length).fill(0));
  }
  if (g.length !== 8) return null;
  return [0, 1, 2, 3].map((k) => ((g[2 * k] << 16) | g[2 * k + 1]) | 0);
}

/** inet_ntop(AF_INET6) as glibc prints it: lowercase, the longest run (>= 2) of zero
 *  groups as `::` (the first on ties), `::ffff:a.b.c.d` and `::a.b.c.d` tails. */
export function formatIPv6(words: readonly number[]): string {
  const g: number[] = [];
  for (const w of words) g.push((w >>> 16) & 0xffff, w & 0xffff);
  let best = -1, bestLen = 0;
  for (let k = 0; k < 8;) {
    if (g[k] !== 0) { k++; continue; }
    let e = k;
    while (e < 8 && g[e] === 0) e++;
    if (e - k > bestLen) { best = k; bestLen = e - k; }
    k = e;
  }
  if (bestLen < 2) best = -1;
  let out = "";
  for (let k = 0; k < 8; k++) {
    if (best >= 0 && k >= best && k < best + bestLen) {
      if (k === best) out += ":";
      continue;
    }
    if (k !== 0) out += ":";
    if (k === 6 && best === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff))) {
      out += formatIPv4(words[3]);
      break;
    }
    out += g[k].toString(16);
  }
  if (best >= 0 && best + bestLen === 8) out += ":";
  return out;
}

/** Canonical text of an address of family `af`, or null when it does not parse. */
export function canonicalAddr(af: Af, text: string): string | null {
  if (af === 4) {
    const a = parseIPv4(text);
    return a === null ? null : formatIPv4(a);
  }
  const w = parseIPv6(text);
  return w === null ? null : formatIPv6(w);
}

/** An address in canonical text (either family) as 4 words; IPv4 is [addr, 0, 0, 0],
 *  the layout of the kernel's nf_inet_addr union that ipvsadm's comparators read. */
export function addrWords(text: string): number[] {
  if (text.includes(":")) return parseIPv6(text) ?? [0, 0, 0, 0];
  return [parseIPv4(text) ?? 0, 0, 0, 0];
}

/** Netmask of a prefix length, 0..32, as int32. */
export function ipv4PrefixMask(len: number): number {
  return len <= 0 ? 0 : (0xffffffff << (32 - Math.min(len, 32))) | 0;
}

/** Prefix length of a contiguous mask, or -1 when the mask has holes. */
export function ipv4MaskLen(mask: number): number {
  const inv = ~mask >>> 0;
  if ((inv & (inv + 1)) !== 0) return -1;
  return Math.clz32(inv);
}

export function ipv4InPrefix(addr: number, net: number, len: number): boolean {
  const m = ipv4PrefixMask(len);
  return (addr & m) === (net & m);
}

export function ipv6InPrefix(addr: readonly number[], net: readonly number[], len: number): boolean {
  for (let k = 0; k < 4; k++) {
    const bits = Math.max(0, Math.min(32, len - 32 * k));
    const m = ipv4PrefixMask(bits);
    if ((addr[k] & m) !== (net[k] & m)) return false;
  }
  return true;
}
