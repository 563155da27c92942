// The common -R line shapes without popt: what `-S -n` and the state file write for
// plain services and real servers (`-A -t VIP:PORT -s rr [-p N]`, `-a -t VIP:PORT -r
// RIP:PORT -m -w 1 [-x N] [-y N]`, and -E/-e/-u alike). A restore of 110 000 such lines
// spent 0.9 s in getopt's general path (popt's generator, the option matrix, regexes);
// this reads them in a fraction of that, straight from the line's text (splitting each
// line into words first was a third of what remained, most of it garbage collection).
//
// Contract: fastLine(argv) returns the Command that parseArgs(argv) would return, field
// for field and in the same key order (summaries compare JSON text), or null when the
// line is anything else; the caller then runs parseArgs, which also produces every error
// message. So only lines that parseArgs certainly accepts are taken here: numeric
// addresses in canonical form (the text is then the address), explicit non-zero ports,
// each option once, nothing that depends on names, option order or defaults the general
// path would fill in differently. fastLineText(line) is fastLine of the line's words, for
// lines of words split by single spaces (anything else is null: lineWords' business).
import type { Command } from "../control/commands.ts";
import type { Af, Dest, Fwd, ServiceKey } from "../control/model.ts";
import { formatIPv6, parseIPv6 } from "../wire/addr.ts";
import { dottedQuad } from "../control/dotted_quad.ts";

const MAX_TIMEOUT = 86400 * 31;
const INT_MAX = 2147483647;
const SCHEDNAME_MAX = 15;
const SPACE = 32, DASH = 45, COLON = 58, BRACKET = 91;

/** Decimal digits only in s[from, to), no sign or blanks, at most 10 of them: the value, else -1. */
function digits(s: string, from: number, to: number): number {
  const n = to - from;
  if (n <= 0 || n > 10) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + c - 48;
  }
  return v;
}

interface AddrPort { af: Af; addr: string; port: number }

/**
 * `A.B.C.D:PORT` or `[V6]:PORT` in s[from, to), with a port of 1..65535; null for anything
 * else. With a cache, equal IPv4 addresses come back as one string.
 */
function addrPort(s: string, from: number, to: number, cache?: FastLineCache): AddrPort | null {
  if (s.charCodeAt(from) === BRACKET) {
    const close = s.indexOf("]", from);
    if (close < 0 || close >= to || s.charCodeAt(close + 1) !== COLON) return null;
    const port = digits(s, close + 2, to);
    if (port < 1 || port > 65535) return null;
    const host = s.slice(from + 1, close);
    if (!host.includes(":")) return null; // parseAddrPort's bracketed-IPv4 quirk: the general path
    const v6 = parseIPv6(host);
    return v6 ? { af: 6, addr: formatIPv6(v6), port } : null;
  }
  const colon = s.lastIndexOf(":", to - 1);
  if (colon < from) return null;
  const port = digits(s, colon + 1, to);
  const v = dottedQuad(s, colon, from);
  if (port < 1 || port > 65535 || v === null) return null;
  let addr = cache?.addrs.get(v);
  if (addr === undefined) {
    addr = s.slice(from, colon);
    cache?.addrs.set(v, addr);
  }
  return { af: 4, addr, port };
}

/** The Command of a common -R line given as words (see the top of this file), or null. */
export function fastLine(argv: readonly string[]): Command | null {
  for (const w of argv) if (w === "" || w.includes(" ")) return null; // not what fastLineText reads
  return fastLineText(argv.join(" "));
}

/**
 * The service address of the line before, for fastLineText: an -a line names the service
 * of the lines above it, and reading the address and making its key once for all of them
 * spares 100 000 of each in a restore. Lines read with one cache share key objects.
 */
export class FastLineCache {
  word = "";
  kind = 0;
  vip: AddrPort | null = null;
  key: ServiceKey | null = null;
  /**
   * IPv4 address text by value: a restore names the same real servers in many services,
   * and one string per address (not per line) is less to keep, and to read again (a
   * string sliced from the input is copied out of it when first read).
   */
  readonly addrs = new Map<number, string>();
}

/** fastLine of a line's text (see the top of this file), or null. */
export function fastLineText(line: string, cache?: FastLineCache): Command | null {
  // Two-character options, read by character code; values are sliced only where kept.
  if (line.length < 2 || line.charCodeAt(0) !== DASH || line.charCodeAt(2) !== SPACE) return null;
  if (line.includes("\t") || line.includes("\r")) return null; // lineWords splits on those too
  const c = line.charCodeAt(1);
  const svcCmd = c === 65 || c === 69; // A, E
  const destCmd = c === 97 || c === 101; // a, e
  if (!svcCmd && !destCmd) return null;
  let kind: "tcp" | "udp" | "" = "";
  let vip: AddrPort | null = null;
  let rip: AddrPort | null = null;
  let sched = "";
  let timeout = -1;
  let fwd: Fwd | "" = "";
  let weight = -1, uThreshold = -1, lThreshold = -1;
  let i = 3;
  while (i < line.length) {
    // An option: exactly "-X" and a space or the end.
    if (line.charCodeAt(i) !== DASH || (i + 2 < line.length && line.charCodeAt(i + 2) !== SPACE) || i + 2 > line.length) return null;
    const o = line.charCodeAt(i + 1);
    i += 3;
    if (o === 109 || o === 103 || o === 105) { // m, g, i
      if (!destCmd || fwd !== "") return null;
      fwd = o === 109 ? "masq" : o === 103 ? "route" : "tunnel";
      continue;
    }
    // Its value: the next word, which must not start with '-' (popt would read it another way).
    if (i >= line.length) return null;
    let e = line.indexOf(" ", i);
    if (e < 0) e = line.length;
    if (e === i || line.charCodeAt(i) === DASH) return null;
    switch (o) {
      case 116: case 117: // t, u
        if (kind !== "") return null;
        kind = o === 116 ? "tcp" : "udp";
        if (cache && cache.kind === o && cache.word.length === e - i && line.startsWith(cache.word, i)) vip = cache.vip;
        else {
          vip = addrPort(line, i, e, cache);
          if (vip === null) return null;
          if (cache) {
            cache.word = line.slice(i, e);
            cache.kind = o;
            cache.vip = vip;
            cache.key = null;
          }
        }
        break;
      case 115: // s
        if (!svcCmd || sched !== "") return null;
        sched = line.slice(i, Math.min(e, i + SCHEDNAME_MAX));
        if (sched === "ipvsadm") return null; // a dropped word: lineWords' business
        break;
      case 112: // p
        if (!svcCmd || timeout >= 0) return null;
        timeout = digits(line, i, e);
        if (timeout < 1 || timeout > MAX_TIMEOUT) return null;
        break;
      case 114: // r
        if (!destCmd || rip !== null || vip === null) return null; // -r before -t takes no port from it
        rip = addrPort(line, i, e, cache);
        if (rip === null) return null;
        break;
      case 119: // w
        if (!destCmd || weight >= 0) return null;
        weight = digits(line, i, e);
        if (weight < 0 || weight > 65535) return null;
        break;
      case 120: // x
        if (!destCmd || uThreshold >= 0) return null;
        uThreshold = digits(line, i, e);
        if (uThreshold < 0 || uThreshold > INT_MAX) return null;
        break;
      case 121: // y
        if (!destCmd || lThreshold >= 0) return null;
        lThreshold = digits(line, i, e);
        if (lThreshold < 0 || lThreshold > INT_MAX) return null;
        break;
      default:
        return null;
    }
    i = e + 1;
    if (e < line.length && i >= line.length) return null; // a trailing space
  }
  if (vip === null || kind === "") return null;
  let key: ServiceKey;
  if (cache && cache.vip === vip) key = cache.key ??= { kind, af: vip.af, addr: vip.addr, port: vip.port, fwmark: 0 };
  else key = { kind, af: vip.af, addr: vip.addr, port: vip.port, fwmark: 0 };
  if (svcCmd) {
    const persistent = timeout > 0;
    return {
      kind: c === 65 ? "add-service" : "edit-service",
      svc: {
        key, sched: sched || "wlc", schedFlags: 0, persistent, timeoutSec: persistent ? timeout : 0,
        netmask: vip.af === 6 ? "128" : "255.255.255.255", pe: "", ops: false, laddrs: [], proxyProtocol: 0,
      },
    };
  }
  if (rip === null) return null;
  const method: Fwd = fwd || "route";
  if (rip.af !== vip.af && method !== "tunnel") return null; // an error, or full NAT: the general path
  const dest: Dest = {
    af: rip.af, addr: rip.addr,
    // Direct routing and tunnels take the service's port (finish() in getopt.ts).
    port: method === "masq" ? rip.port : vip.port,
    fwd: method, weight: weight < 0 ? 1 : weight, uThreshold: uThreshold < 0 ? 0 : uThreshold,
    lThreshold: lThreshold < 0 ? 0 : lThreshold, tunType: "ipip", tunPort: 0, tunCsum: "nocsum",
  };
  return { kind: c === 97 ? "add-dest" : "edit-dest", key, dest };
}
