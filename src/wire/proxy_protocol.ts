// PROXY protocol headers (haproxy's proxy-protocol.txt, versions 1 and 2), written in
// front of a connection's first byte toward a real server so it learns the client's
// address through a full-NAT director. Encoders only: pure and allocation-free. Each
// writes into the caller's buffer at an offset and returns the bytes written, or 0 when
// it cannot (unknown family or protocol, not enough room); on 0 nothing was written.
//
// Addresses come the way the data path holds them (wire/addr.ts contract): int32 words in
// network bit order, IPv4 in word 0 with words 1–3 ignored, IPv6 as four words, most
// significant first: Pkt.src0..3 / dst0..3 and ConnTable.addrWord. proxyWriteFromIp reads
// them straight from an IP header in a byte buffer (the client's original packet).
//
// v1 (text, TCP only):  "PROXY TCP4 192.0.2.1 198.51.100.7 40000 443\r\n"
//   IPv6 text is RFC 5952 canonical: lowercase, no leading zeros, the longest run of two or
//   more zero groups as "::" (the first on ties), and the mixed form "::ffff:a.b.c.d" for
//   IPv4-mapped addresses (RFC 5952 §5). Receivers parse any inet_pton form; we emit one.
// v2 (binary):
//   0       12      13      14      16                    16+len
//   | sig   |ver_cmd| fam   | len   | src | dst | sport | dport |
//   sig = \r\n\r\n\0\r\nQUIT\n, ver_cmd 0x21 (version 2, PROXY), fam 0x11 TCP/IPv4,
//   0x12 UDP/IPv4, 0x21 TCP/IPv6, 0x22 UDP/IPv6; len (big endian) 12 or 36. No TLVs.
import { IPPROTO_TCP, IPPROTO_UDP } from "./ipv4.ts";
import type { Pkt } from "./pkt.ts";

export const PROXY_V1 = 1;
export const PROXY_V2 = 2;
/** Longest v1 line the spec allows, CRLF included ("PROXY UNKNOWN" + two full IPv6 ...). */
export const PROXY_V1_MAX_LEN = 107;
/** Longest v1 line this encoder writes: "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n". */
export const PROXY_V1_MAX_LEN4 = 56;
/** "PROXY TCP6 " + two 39-character addresses + two 5-digit ports + separators + CRLF. */
export const PROXY_V1_MAX_LEN6 = 104;
/** v2: 16-byte fixed part + 12 bytes of IPv4 addresses and ports. */
export const PROXY_V2_LEN4 = 28;
/** v2: 16-byte fixed part + 36 bytes of IPv6 addresses and ports. */
export const PROXY_V2_LEN6 = 52;
/** Bytes of the v2 fixed part (signature, ver_cmd, fam, len). */
export const PROXY_V2_HDR_LEN = 16;

/** The v2 signature. Treat as read-only. */
export const PROXY_V2_SIG = new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_VER_CMD_PROXY = 0x21;

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const V1_TCP4 = ascii("PROXY TCP4 ");
const V1_TCP6 = ascii("PROXY TCP6 ");
const HEX = ascii("0123456789abcdef");
const C_SPACE = 0x20, C_DOT = 0x2e, C_COLON = 0x3a, C_CR = 0x0d, C_LF = 0x0a;

/** The 8 groups of the IPv6 address being formatted (reused: no allocation per call). */
const G = new Uint16Array(8);

/**
 * Room to reserve for a header of `version` (1 or 2) and family `af` (4 or 6): the exact
 * length for v2, an upper bound for v1 (its length depends on the digits). 0 if unknown.
 */
export function proxyHeaderLength(version: number, af: number): number {
  if (version === PROXY_V2) return af === 4 ? PROXY_V2_LEN4 : af === 6 ? PROXY_V2_LEN6 : 0;
  if (version === PROXY_V1) return af === 4 ? PROXY_V1_MAX_LEN4 : af === 6 ? PROXY_V1_MAX_LEN6 : 0;
  return 0;
}

/** Writes 0..65535 in decimal without leading zeros; returns the index after it. */
function putDec(out: Uint8Array, at: number, n: number): number {
  if (n >= 10000) out[at++] = 48 + ((n / 10000) | 0);
  if (n >= 1000) out[at++] = 48 + (((n / 1000) | 0) % 10);
  if (n >= 100) out[at++] = 48 + (((n / 100) | 0) % 10);
  if (n >= 10) out[at++] = 48 + (((n / 10) | 0) % 10);
  out[at++] = 48 + (n % 10);
  return at;
}

/** Dotted-quad text of an int32 IPv4 address. */
function putIPv4(out: Uint8Array, at: number, a: number): number {
  at = putDec(out, at, (a >>> 24) & 0xff);
  out[at++] = C_DOT;
  at = putDec(out, at, (a >>> 16) & 0xff);
  out[at++] = C_DOT;
  at = putDec(out, at, (a >>> 8) & 0xff);
  out[at++] = C_DOT;
  return putDec(out, at, a & 0xff);
}

/** One IPv6 group in lowercase hex without leading zeros. */
function putHex16(out: Uint8Array, at: number, g: number): number {
  if (g >= 0x1000) out[at++] = HEX[g >>> 12];
  if (g >= 0x100) out[at++] = HEX[(g >>> 8) & 0xf];
  if (g >= 0x10) out[at++] = HEX[(g >>> 4) & 0xf];
  out[at++] = HEX[g & 0xf];
  return at;
}

/** RFC 5952 text of the IPv6 address w0..w3 (see the file comment). */
function putIPv6(out: Uint8Array, at: number, w0: number, w1: number, w2: number, w3: number): number {
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) {
    // IPv4-mapped (::ffff:0:0/96): the mixed notation RFC 5952 §5 recommends.
    out[at++] = C_COLON; out[at++] = C_COLON;
    for (let k = 0; k < 4; k++) out[at++] = HEX[15];
    out[at++] = C_COLON;
    return putIPv4(out, at, w3);
  }
  G[0] = w0 >>> 16; G[1] = w0; G[2] = w1 >>> 16; G[3] = w1;
  G[4] = w2 >>> 16; G[5] = w2; G[6] = w3 >>> 16; G[7] = w3;
  // The longest run of zero groups, first on ties; a single zero group is not compressed.
  let best = -1, bestLen = 1;
  for (let k = 0; k < 8;) {
    if (G[k] !== 0) { k++; continue; }
    let e = k + 1;
    while (e < 8 && G[e] === 0) e++;
    if (e - k > bestLen) { best = k; bestLen = e - k; }
    k = e;
  }
  for (let k = 0; k < 8; k++) {
    if (k === best) {
      out[at++] = C_COLON; out[at++] = C_COLON;
      k += bestLen - 1;
      continue;
    }
    if (k !== 0 && k !== best + bestLen) out[at++] = C_COLON;
    at = putHex16(out, at, G[k]);
  }
  return at;
}

function put16(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >>> 8) & 0xff;
  out[at + 1] = v & 0xff;
}
function put32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}
function get32(u8: Uint8Array, at: number): number {
  return (u8[at] << 24) | (u8[at + 1] << 16) | (u8[at + 2] << 8) | u8[at + 3];
}

/**
 * PROXY v1 line for a TCP connection from s0..s3:sport to d0..d3:dport of family `af`
 * (4 or 6; IPv4 uses s0/d0). Needs proxyHeaderLength(1, af) bytes of room at out[o];
 * returns the line's length (CRLF included) or 0.
 */
export function proxyV1Write(
  out: Uint8Array, o: number, af: number,
  s0: number, s1: number, s2: number, s3: number,
  d0: number, d1: number, d2: number, d3: number,
  sport: number, dport: number,
): number {
  const room = proxyHeaderLength(PROXY_V1, af);
  if (room === 0 || o < 0 || o + room > out.length) return 0;
  const pre = af === 4 ? V1_TCP4 : V1_TCP6;
  let at = o;
  for (let i = 0; i < pre.length; i++) out[at++] = pre[i];
  if (af === 4) {
    at = putIPv4(out, at, s0);
    out[at++] = C_SPACE;
    at = putIPv4(out, at, d0);
  } else {
    at = putIPv6(out, at, s0, s1, s2, s3);
    out[at++] = C_SPACE;
    at = putIPv6(out, at, d0, d1, d2, d3);
  }
  out[at++] = C_SPACE;
  at = putDec(out, at, sport & 0xffff);
  out[at++] = C_SPACE;
  at = putDec(out, at, dport & 0xffff);
  out[at++] = C_CR;
  out[at++] = C_LF;
  return at - o;
}

/**
 * PROXY v2 header (command PROXY, no TLVs) for `proto` (IPPROTO_TCP or IPPROTO_UDP) from
 * s0..s3:sport to d0..d3:dport of family `af`. Writes proxyHeaderLength(2, af) bytes at
 * out[o] and returns that length, or 0.
 */
export function proxyV2Write(
  out: Uint8Array, o: number, af: number, proto: number,
  s0: number, s1: number, s2: number, s3: number,
  d0: number, d1: number, d2: number, d3: number,
  sport: number, dport: number,
): number {
  const len = proxyHeaderLength(PROXY_V2, af);
  const transport = proto === IPPROTO_TCP ? 0x1 : proto === IPPROTO_UDP ? 0x2 : 0;
  if (len === 0 || transport === 0 || o < 0 || o + len > out.length) return 0;
  for (let i = 0; i < 12; i++) out[o + i] = PROXY_V2_SIG[i];
  out[o + 12] = V2_VER_CMD_PROXY;
  out[o + 13] = (af === 4 ? 0x10 : 0x20) | transport;
  put16(out, o + 14, len - PROXY_V2_HDR_LEN);
  let at = o + PROXY_V2_HDR_LEN;
  if (af === 4) {
    put32(out, at, s0);
    put32(out, at + 4, d0);
    at += 8;
  } else {
    put32(out, at, s0); put32(out, at + 4, s1); put32(out, at + 8, s2); put32(out, at + 12, s3);
    put32(out, at + 16, d0); put32(out, at + 20, d1); put32(out, at + 24, d2); put32(out, at + 28, d3);
    at += 32;
  }
  put16(out, at, sport);
  put16(out, at + 2, dport);
  return len;
}

/**
 * Either version: proxyV1Write (only for IPPROTO_TCP: v1 has no UDP, returns 0) or
 * proxyV2Write. `version` is PROXY_V1 or PROXY_V2.
 */
export function proxyWrite(
  out: Uint8Array, o: number, version: number, af: number, proto: number,
  s0: number, s1: number, s2: number, s3: number,
  d0: number, d1: number, d2: number, d3: number,
  sport: number, dport: number,
): number {
  if (version === PROXY_V2) return proxyV2Write(out, o, af, proto, s0, s1, s2, s3, d0, d1, d2, d3, sport, dport);
  if (version === PROXY_V1 && proto === IPPROTO_TCP) return proxyV1Write(out, o, af, s0, s1, s2, s3, d0, d1, d2, d3, sport, dport);
  return 0;
}

/**
 * Header for the packet whose IP header starts at u8[l3] (family from its version nibble)
 * and whose TCP/UDP header starts at u8[l4] (ports read from there); `proto` is its
 * transport protocol (IPv6 extension headers hide it from the fixed header). Pass the
 * client's packet before any NAT rewrite. Precondition: the packet was parsed (parseIp).
 */
export function proxyWriteFromIp(out: Uint8Array, o: number, version: number, proto: number, u8: Uint8Array, l3: number, l4: number): number {
  const sport = (u8[l4] << 8) | u8[l4 + 1];
  const dport = (u8[l4 + 2] << 8) | u8[l4 + 3];
  const v = u8[l3] >> 4;
  if (v === 4) return proxyWrite(out, o, version, 4, proto, get32(u8, l3 + 12), 0, 0, 0, get32(u8, l3 + 16), 0, 0, 0, sport, dport);
  if (v !== 6) return 0;
  return proxyWrite(
    out, o, version, 6, proto,
    get32(u8, l3 + 8), get32(u8, l3 + 12), get32(u8, l3 + 16), get32(u8, l3 + 20),
    get32(u8, l3 + 24), get32(u8, l3 + 28), get32(u8, l3 + 32), get32(u8, l3 + 36),
    sport, dport,
  );
}

/** Header from a parsed packet's original tuple (parseIp fills Pkt before any rewrite). */
export function proxyWriteFromPkt(out: Uint8Array, o: number, version: number, p: Pkt): number {
  return proxyWrite(out, o, version, p.ipv, p.proto, p.src0, p.src1, p.src2, p.src3, p.dst0, p.dst1, p.dst2, p.dst3, p.sport, p.dport);
}
