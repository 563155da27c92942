// The ipvsadm rule-line text shared by -R (parseRestore) and -S (formatSave), plus the
// pieces -L shares with -S: ipvsadm's sort order and its addr:port naming.
// parseRestore is all-or-nothing: it returns every line's Commands or throws the first
// line's IpvsError with `line` set, and the caller then applies nothing. formatSave is
// byte-exact with `ipvsadm -S`, and parseRestore(formatSave(r)) rebuilds r (thresholds,
// timeouts and the netmask of non-persistent services excepted: -S does not save them).
// Each -R line is an ipvsadm command line, so this module uses cli/getopt's parseArgs
// (getopt imports nothing from here, so there is no cycle).
import { parseArgs } from "./getopt.ts";
import { fastLine } from "./fast_line.ts";
import { dottedQuad } from "../control/dotted_quad.ts";
import { NO_NAMES, type ResolveEnv, type ReverseNames, systemNames } from "./names.ts";
import { addrWords } from "../wire/addr.ts";
import type { Command } from "../control/commands.ts";
import { IpvsError } from "../control/errors.ts";
import { type Af, CHECK_DEFAULTS, DEFAULT_TIMEOUTS, type Dest, type Fwd, type HealthCheck, type RuleSet, type Service, type ServiceKey, type SvcKind } from "../control/model.ts";

// ---- -R ------------------------------------------------------------------------------

/** ipvsadm -R's tokenizer: one invocation per line, words split on space, tab and CR, no
 *  quoting or escaping, the word `ipvsadm` dropped wherever it appears, blank lines
 *  skipped. tslb's choice: a line whose first non-blank character is `#` is a comment
 *  (ipvsadm -R itself aborts on it; its ipvsadm-restore wrapper strips such lines). */
export function restoreLines(text: string): { line: number; argv: string[] }[] {
  const out: { line: number; argv: string[] }[] = [];
  const raw = text.split("\n");
  for (let i = 0; i < raw.length; i++) {
    const argv = lineWords(raw[i]);
    if (argv !== null) out.push({ line: i + 1, argv });
  }
  return out;
}

/** One -R line's words, or null for a blank or comment line. Lines without tabs or CRs
 *  (nearly all) are split on spaces without a regex, and a split with no empty word and
 *  no `ipvsadm` is the answer as it is: a 110 000-line restore spent a third of its
 *  parse time in regexes and copies. */
export function lineWords(raw: string): string[] | null {
  const words = raw.includes("\t") || raw.includes("\r") ? raw.split(/[ \t\r]+/) : raw.split(" ");
  let clean = true;
  for (let i = 0; i < words.length && clean; i++) clean = words[i] !== "" && words[i] !== "ipvsadm";
  if (clean) return words[0].charCodeAt(0) === 35 ? null : words; // '#' first: a comment
  const argv: string[] = [];
  let first = true;
  for (const w of words) {
    if (w === "") continue;
    if (first && w.charCodeAt(0) === 35) return null;
    first = false;
    if (w !== "ipvsadm") argv.push(w);
  }
  return argv.length > 0 ? argv : null;
}

/** One -R line's Commands: the common shapes by fastLine, the rest by parseArgs; only
 *  state-changing lines are allowed (a listing, -R, -h ... gets ipvsadm's "Try ..."
 *  error, exit 255). Throws the line's IpvsError without a line number. */
export function lineCommands(argv: readonly string[], prog = "ipvsadm", env: ResolveEnv = systemNames()): Command[] {
  const fast = fastLine(argv);
  if (fast !== null) return [fast];
  const inv = parseArgs(argv, env, prog);
  if (inv.kind !== "apply") {
    throw new IpvsError("USAGE", `Try \`${prog} -h' or '${prog} --help' for more information.`, 255);
  }
  return inv.cmds;
}

/** Parse -R input into Commands (see lineCommands); the first bad line's IpvsError is
 *  thrown with `line` set. */
export function parseRestore(text: string, prog = "ipvsadm", env: ResolveEnv = systemNames()): Command[] {
  const cmds: Command[] = [];
  for (const { line, argv } of restoreLines(text)) {
    try {
      for (const c of lineCommands(argv, prog, env)) cmds.push(c);
    } catch (e) {
      if (e instanceof IpvsError) e.line = line;
      throw e;
    }
  }
  return cmds;
}

// ---- sorting (reference §2.6) --------------------------------------------------------

const PROTO_NUM: Readonly<Record<SvcKind, number>> = { tcp: 6, udp: 17, sctp: 132, fwm: 6 };
const AF_NUM: Readonly<Record<Af, number>> = { 4: 2, 6: 10 };

/** ipvsadm subtracts unsigned 32-bit values and returns the difference as an int, so a
 *  difference of 2^31 or more has the "wrong" sign. `| 0` reproduces that wrap. */
export const cmpU32 = (a: number, b: number) => (a - b) | 0;

/** Addresses as words, compared as ipvsadm compares them: one word for IPv4, four for IPv6. */
function cmpWords(af: Af, wa: readonly number[], wb: readonly number[]): number {
  const n = af === 6 ? 4 : 1;
  let r = 0;
  for (let k = 0; r === 0 && k < n; k++) r = cmpU32(wa[k], wb[k]);
  return r;
}

function cmpServiceWords(a: ServiceKey, wa: readonly number[], b: ServiceKey, wb: readonly number[]): number {
  return cmpU32(a.fwmark, b.fwmark) || AF_NUM[a.af] - AF_NUM[b.af] || PROTO_NUM[a.kind] - PROTO_NUM[b.kind] ||
    cmpWords(a.af, wa, wb) || a.port - b.port;
}

/** ipvs_cmp_services: fwmark, family, protocol, address, port. */
export function cmpServices(a: ServiceKey, b: ServiceKey): number {
  return cmpServiceWords(a, addrWords(a.addr), b, addrWords(b.addr));
}

/** ipvs_cmp_dests: address (read in the first dest's family), then port. */
export function cmpDests(a: { af: Af; addr: string; port: number }, b: { af: Af; addr: string; port: number }): number {
  return cmpWords(a.af, addrWords(a.addr), addrWords(b.addr)) || a.port - b.port;
}

/** glibc qsort's merge sort (msort_with_tmp): with ipvsadm's non-transitive comparator
 *  the order depends on the algorithm, so use the same one. Returns a new array. */
export function qsort<T>(items: readonly T[], cmp: (a: T, b: T) => number): T[] {
  const b = items.slice();
  const tmp: T[] = new Array(b.length);
  const msort = (lo: number, n: number) => {
    if (n <= 1) return;
    const n1 = n >> 1;
    msort(lo, n1);
    msort(lo + n1, n - n1);
    let i = lo, j = lo + n1, k = 0;
    const iEnd = lo + n1, jEnd = lo + n;
    while (i < iEnd && j < jEnd) tmp[k++] = cmp(b[i], b[j]) <= 0 ? b[i++] : b[j++];
    while (i < iEnd) tmp[k++] = b[i++];
    for (let m = 0; m < k; m++) b[lo + m] = tmp[m];
  };
  msort(0, b.length);
  return b;
}

// The sorts of -L, -S and the other listings: qsort with cmpServices / cmpDests, each
// address parsed once instead of at every comparison (the parsing was most of formatting
// 10 000 services × 10 servers).

/** Services (or anything with a service key) in ipvsadm's order; a new array. */
export function sortServices<T extends { key: ServiceKey }>(items: readonly T[]): T[] {
  const keyed = items.map((item) => ({ item, w: sortWords(item.key.addr) }));
  return qsort(keyed, (a, b) => cmpServiceWords(a.item.key, a.w, b.item.key, b.w)).map((k) => k.item);
}

/** Destinations in ipvsadm's order; a new array. */
export function sortDests<T extends { af: Af; addr: string; port: number }>(items: readonly T[]): T[] {
  if (items.length < 2) return items.slice();
  const keyed = items.map((item) => ({ item, w: sortWords(item.addr) }));
  return qsort(keyed, (a, b) => cmpWords(a.item.af, a.w, b.w) || a.item.port - b.item.port).map((k) => k.item);
}

/** addrWords, with the canonical IPv4 text of the rules read directly. */
function sortWords(text: string): number[] {
  const v = dottedQuad(text);
  return v === null ? addrWords(text) : [v, 0, 0, 0];
}

// ---- naming --------------------------------------------------------------------------

/** getservbyport's protocol for a service: fwmark services were created as "tcp". */
export const protoName = (k: SvcKind) => (k === "fwm" ? "tcp" : k);

/** ipvsadm's addrport_to_anyname: `addr:port`, IPv6 in brackets, names unless numeric. */
export function addrPortName(af: Af, addr: string, port: number, proto: string | null, numeric: boolean, names: ReverseNames): string {
  const host = numeric ? addr : names.hostName(af, addr) ?? addr;
  const serv = numeric || proto === null ? String(port) : names.serviceName(port, proto) ?? String(port);
  // ipvsadm formats into a 60-byte buffer: longer names are cut to 59 characters.
  return (af === 6 ? `[${host}]:${serv}` : `${host}:${serv}`).slice(0, 59);
}

/** Scheduler-flag names in ipvsadm's fixed order; sh and mh name flag-1/flag-2 their own
 *  way and show no flag-3. */
export function schedFlagNames(sched: string, flags: number): string[] {
  const names = sched === "sh" ? ["sh-fallback", "sh-port"] : sched === "mh" ? ["mh-fallback", "mh-port"] : ["flag-1", "flag-2", "flag-3"];
  return names.filter((_, k) => flags & (1 << k));
}

// ---- -S ------------------------------------------------------------------------------

const FWD_SWITCH: Readonly<Record<Fwd, string>> = { route: "-g", masq: "-m", tunnel: "-i", fullnat: "--fullnat" };
const SVC_SWITCH: Readonly<Record<SvcKind, string>> = { tcp: "-t", udp: "-u", sctp: "--sctp-service", fwm: "-f" };
const DEFAULT_MASK: Readonly<Record<Af, string>> = { 4: "255.255.255.255", 6: "128" };

/**
 * -S output for the rules (a RuleSet, or the services of a ListReply). tslb's health-check
 * options follow ipvsadm's on a destination's line, only when it has a check; its
 * --laddr and --proxy-protocol follow ipvsadm's on a service's line, only when set. With
 * `full` (the state file) thresholds are kept too (-x/-y, which ipvsadm -S drops) and
 * non-default timeouts come first as a --set line, so that nothing is lost on reload.
 */
export function formatSave(rules: RuleSet | readonly Service[], numeric: boolean, names: ReverseNames = NO_NAMES, full = false): string {
  const services = "services" in rules ? rules.services : rules;
  let out = "";
  if (full && "timeouts" in rules) {
    const t = rules.timeouts;
    if (t.tcp !== DEFAULT_TIMEOUTS.tcp || t.tcpfin !== DEFAULT_TIMEOUTS.tcpfin || t.udp !== DEFAULT_TIMEOUTS.udp) out += `--set ${t.tcp} ${t.tcpfin} ${t.udp}\n`;
  }
  for (const svc of sortServices(services)) {
    const k = svc.key;
    const proto = protoName(k.kind);
    const svcName = k.kind === "fwm"
      ? `-f ${k.fwmark}${k.af === 6 ? " -6" : ""}`
      : `${SVC_SWITCH[k.kind]} ${addrPortName(k.af, k.addr, k.port, proto, numeric, names)}`;
    out += `-A ${svcName} -s ${svc.sched}`;
    if (svc.persistent) {
      out += ` -p ${svc.timeoutSec}`;
      if (svc.netmask !== DEFAULT_MASK[k.af]) out += ` -M ${svc.netmask}`;
    }
    if (svc.pe) out += ` --pe ${svc.pe}`;
    if (svc.ops) out += " -o";
    if (svc.schedFlags & 7) out += ` -b ${schedFlagNames(svc.sched, svc.schedFlags).join(",")}`;
    out += serviceTslbOptions(svc) + "\n";
    for (const d of sortDests(svc.dests)) {
      const dname = addrPortName(d.af, d.addr, d.port, proto, numeric, names);
      const thresholds = full ? (d.uThreshold ? ` -x ${d.uThreshold}` : "") + (d.lThreshold ? ` -y ${d.lThreshold}` : "") : "";
      out += `-a ${svcName} -r ${dname} ${FWD_SWITCH[d.fwd]} -w ${d.weight}${d.fwd === "tunnel" ? tunnelRule(d) : ""}${thresholds}${d.check ? " " + checkOptions(d.check) : ""}\n`;
    }
  }
  return out;
}

/** tslb's full-NAT service settings as -A options, after ipvsadm's (always numeric). */
function serviceTslbOptions(svc: Service): string {
  let out = "";
  if (svc.laddrs.length) out += ` --laddr ${svc.laddrs.join(",")}`;
  if (svc.proxyProtocol) out += ` --proxy-protocol v${svc.proxyProtocol}`;
  return out;
}

/** A check as -a options: --check first, then only the settings that differ from the defaults. */
export function checkOptions(c: HealthCheck): string {
  const D = CHECK_DEFAULTS;
  let out = `--check ${c.kind}`;
  if (c.port !== D.port) out += ` --check-port ${c.port}`;
  if (c.path !== D.path) out += ` --check-path ${c.path}`;
  if (c.status !== D.status) out += ` --check-status ${c.status}`;
  if (c.intervalMs !== D.intervalMs) out += ` --check-interval ${c.intervalMs / 1000}`;
  if (c.timeoutMs !== D.timeoutMs) out += ` --check-timeout ${c.timeoutMs / 1000}`;
  if (c.rise !== D.rise) out += ` --check-rise ${c.rise}`;
  if (c.fall !== D.fall) out += ` --check-fall ${c.fall}`;
  if (c.viaVip) out += " --check-via-vip";
  return out;
}

const CSUM_OPT = { nocsum: "--tun-nocsum", csum: "--tun-csum", remcsum: "--tun-remcsum" } as const;

function tunnelRule(d: Dest): string {
  switch (d.tunType) {
    case "ipip": return " --tun-type ipip";
    case "gue": return ` --tun-type gue --tun-port ${d.tunPort} ${CSUM_OPT[d.tunCsum]}`;
    case "gre": return ` --tun-type gre ${CSUM_OPT[d.tunCsum]}`;
  }
}
