// ipvsadm's command line, parsed the way ipvsadm 1.31 parses it (popt, then its own
// checks), into an Invocation. Contract: parseArgs either returns an Invocation whose
// Commands are complete (defaults filled in, addresses in canonical text, "edit replaces
// everything") or throws IpvsError with ipvsadm's exact message and exit status:
// 2 for ipvsadm's own checks, 255 for popt errors and the "Try ..." path. It reads no
// files itself: names go through `env` (names.ts). Options are processed one at a time
// in command-line order, as popt hands them over, because ipvsadm's results depend on
// that order (-M reads the service family known so far; -r copies the service port).
import type { Command, Invocation, ListOptions, SyncDaemonSpec } from "../control/commands.ts";
import { IpvsError, usageError } from "../control/errors.ts";
import {
  CHECK_DEFAULTS, DEFAULT_PERSISTENT_TIMEOUT, type Af, type CheckKind, type Dest, type HealthCheck, type ServiceKey,
  type ServiceSpec, type SvcKind, type Timeouts, type TunCsum, type TunType,
} from "../control/model.ts";
import { canonicalAddr, formatIPv4, formatIPv6, parseIPv4, parseIPv4Strict, parseIPv6 } from "../wire/addr.ts";
import { type ResolveEnv, systemNames } from "./names.ts";

// ---- popt: the option table and the scanner -------------------------------------------

const NONE = 0, REQUIRED = 1, OPTIONAL = 2;
type ArgKind = typeof NONE | typeof REQUIRED | typeof OPTIONAL;

/** [long name, short letter ("" = none), argument]. The tag of an option is its short
 *  letter, else its long name. `--list` is listed once: popt finds -L's entry first. */
const POPT_TABLE: readonly (readonly [string, string, ArgKind])[] = [
  ["add-service", "A", NONE], ["edit-service", "E", NONE], ["delete-service", "D", NONE],
  ["clear", "C", NONE], ["list", "L", NONE], ["", "l", NONE], ["zero", "Z", NONE],
  ["add-server", "a", NONE], ["edit-server", "e", NONE], ["delete-server", "d", NONE],
  ["set", "", NONE], ["help", "h", NONE], ["version", "v", NONE], ["restore", "R", NONE],
  ["save", "S", NONE], ["start-daemon", "", REQUIRED], ["stop-daemon", "", REQUIRED],
  ["tcp-service", "t", REQUIRED], ["udp-service", "u", REQUIRED], ["sctp-service", "", REQUIRED],
  ["fwmark-service", "f", REQUIRED], ["scheduler", "s", REQUIRED], ["persistent", "p", OPTIONAL],
  ["netmask", "M", REQUIRED], ["real-server", "r", REQUIRED], ["masquerading", "m", NONE],
  ["ipip", "i", NONE], ["gatewaying", "g", NONE], ["weight", "w", REQUIRED],
  ["u-threshold", "x", REQUIRED], ["l-threshold", "y", REQUIRED], ["numeric", "n", NONE],
  ["connection", "c", NONE], ["mcast-interface", "", REQUIRED], ["syncid", "", REQUIRED],
  ["timeout", "", NONE], ["daemon", "", NONE], ["stats", "", NONE], ["rate", "", NONE],
  ["thresholds", "", NONE], ["persistent-conn", "", NONE], ["nosort", "", NONE],
  ["sort", "", NONE], ["exact", "X", NONE], ["ipv6", "6", NONE], ["ops", "o", NONE],
  ["pe", "", REQUIRED], ["sched-flags", "b", REQUIRED], ["mcast-group", "", REQUIRED],
  ["mcast-port", "", REQUIRED], ["mcast-ttl", "", REQUIRED], ["sync-maxlen", "", REQUIRED],
  ["tun-info", "", NONE], ["tun-type", "", REQUIRED], ["tun-port", "", REQUIRED],
  ["tun-nocsum", "", NONE], ["tun-csum", "", NONE], ["tun-remcsum", "", NONE],
  // tslb's own: -R --dry-run.
  ["dry-run", "", NONE],
  // tslb's own, outside ipvsadm's matrix (see TSLB_OPTS): health checks and list formats.
  ["check", "", REQUIRED], ["check-port", "", REQUIRED], ["check-path", "", REQUIRED],
  ["check-status", "", REQUIRED], ["check-interval", "", REQUIRED], ["check-timeout", "", REQUIRED],
  ["check-rise", "", REQUIRED], ["check-fall", "", REQUIRED], ["check-via-vip", "", NONE],
  ["json", "", NONE], ["health", "", NONE], ["fullnat-info", "", NONE],
  // tslb's own full NAT: --fullnat is a forwarding method (ipvsadm's forwarding-method
  // column, like -m/-g/-i); --laddr and --proxy-protocol are service settings (TSLB_OPTS).
  // With -L, --laddr is a flag instead (a listing of its own): see LIST_FLAGS.
  ["fullnat", "", NONE], ["laddr", "", REQUIRED], ["proxy-protocol", "", REQUIRED],
];

interface PoptDef { tag: string; arg: ArgKind }
const BY_LONG = new Map<string, PoptDef>();
const BY_SHORT = new Map<string, PoptDef>();
for (const [long, short, arg] of POPT_TABLE) {
  const def = { tag: short || long, arg };
  if (long) BY_LONG.set(long, def);
  if (short) BY_SHORT.set(short, def);
}

/** Options that take no argument with the list command although they take one elsewhere. */
const LIST_FLAGS: ReadonlySet<string> = new Set(["laddr"]);

/** One option from the scanner; `word` is the last argv word consumed, which is what
 *  popt's poptBadOption() names in messages. */
type PoptEvent = { tag: string; arg: string | null; word: string } | { error: string; word: string };

const POPT_BADOPT = "unknown option";
const POPT_NOARG = "missing argument";
const POPT_UNWANTEDARG = "option does not take an argument";

// popt's scanning rules: words that are not options are set aside as leftovers ("-" and
// "" included, everything after "--" too); short options bundle (`-Ln`), and an option
// that takes an argument eats the rest of the bundle (`-p600`, one '=' skipped) or the
// next word. An optional argument (-p) never eats a next word that starts with '-'.
// `flags` names options to scan as taking no argument; the caller may add to it while
// scanning (it knows the command after the first option).
function* popt(argv: readonly string[], leftovers: string[], flags: ReadonlySet<string> = new Set()): Generator<PoptEvent> {
  let i = 0;
  let rest = false;
  const lookup = (map: Map<string, PoptDef>, key: string): PoptDef | undefined => {
    const def = map.get(key);
    return def && flags.has(def.tag) ? { tag: def.tag, arg: NONE } : def;
  };
  const takeNext = (def: PoptDef, word: string): PoptEvent => {
    if (i >= argv.length) {
      return def.arg === OPTIONAL ? { tag: def.tag, arg: null, word } : { error: POPT_NOARG, word };
    }
    if (def.arg === OPTIONAL && argv[i].startsWith("-")) return { tag: def.tag, arg: null, word };
    const arg = argv[i++];
    return { tag: def.tag, arg, word: arg };
  };
  while (i < argv.length) {
    const word = argv[i++];
    if (rest || !word.startsWith("-") || word === "-") { leftovers.push(word); continue; }
    if (word === "--") { rest = true; continue; }
    if (word.startsWith("--")) {
      const eq = word.indexOf("=");
      const def = lookup(BY_LONG, eq < 0 ? word.slice(2) : word.slice(2, eq));
      if (!def) { yield { error: POPT_BADOPT, word }; return; }
      const longArg = eq < 0 ? null : word.slice(eq + 1);
      if (def.arg === NONE) {
        if (longArg !== null) { yield { error: POPT_UNWANTEDARG, word }; return; }
        yield { tag: def.tag, arg: null, word };
      } else if (longArg !== null) yield { tag: def.tag, arg: longArg, word };
      else {
        const ev = takeNext(def, word);
        yield ev;
        if ("error" in ev) return;
      }
      continue;
    }
    let k = 1;
    while (k < word.length) {
      const def = lookup(BY_SHORT, word[k++]);
      if (!def) { yield { error: POPT_BADOPT, word }; return; }
      const eq = word[k] === "=";
      if (eq) k++;
      if (def.arg === NONE) { yield { tag: def.tag, arg: null, word }; continue; }
      // "-p600", "-p=600", and "-p=" (an empty argument, not a missing one).
      if (k < word.length || eq) { yield { tag: def.tag, arg: word.slice(k), word }; break; }
      const ev = takeNext(def, word);
      yield ev;
      if ("error" in ev) return;
    }
  }
}

// ---- commands, options and the legality matrix ---------------------------------------

const CMD = ["add-service", "edit-service", "delete-service", "flush", "list", "add-server",
  "delete-server", "edit-server", "set", "start-daemon", "stop-daemon", "restore", "save", "zero"] as const;
type Cmd = (typeof CMD)[number];

const CMD_BY_TAG: Readonly<Record<string, Cmd>> = {
  A: "add-service", E: "edit-service", D: "delete-service", C: "flush", L: "list", l: "list",
  Z: "zero", a: "add-server", e: "edit-server", d: "delete-server", set: "set", R: "restore",
  S: "save", "start-daemon": "start-daemon", "stop-daemon": "stop-daemon",
};

/** Option names as ipvsadm's messages spell them; the index is the matrix column, and
 *  column order (not command-line order) decides which of two conflicting options is
 *  "earlier" in a message. The last column, dry-run, is tslb's own (allowed with -R only). */
const OPT = ["numeric", "connection", "service-address", "scheduler", "persistent", "netmask",
  "real-server", "forwarding-method", "weight", "u-threshold", "l-threshold", "mcast-interface",
  "timeout", "daemon", "stats", "rate", "thresholds", "persistent-conn", "nosort", "syncid",
  "exact", "ops", "pe", "sched-flags", "mcast-group", "mcast-port", "mcast-ttl", "sync-maxlen",
  "tun-info", "tun-type", "tun-port", "tun-nocsum", "tun-csum", "tun-remcsum", "dry-run"] as const;
type Opt = (typeof OPT)[number];
const col = (o: Opt) => OPT.indexOf(o);

/** Option tag -> the option it sets (--sort and -6 set none: they may repeat). */
const OPT_BY_TAG: Readonly<Record<string, Opt>> = {
  n: "numeric", c: "connection", t: "service-address", u: "service-address",
  "sctp-service": "service-address", f: "service-address", s: "scheduler", p: "persistent",
  M: "netmask", r: "real-server", g: "forwarding-method", i: "forwarding-method",
  m: "forwarding-method", fullnat: "forwarding-method", w: "weight", x: "u-threshold", y: "l-threshold",
  "mcast-interface": "mcast-interface", timeout: "timeout", daemon: "daemon", stats: "stats",
  rate: "rate", thresholds: "thresholds", "persistent-conn": "persistent-conn", nosort: "nosort",
  syncid: "syncid", X: "exact", o: "ops", pe: "pe", b: "sched-flags", "mcast-group": "mcast-group",
  "mcast-port": "mcast-port", "mcast-ttl": "mcast-ttl", "sync-maxlen": "sync-maxlen",
  "tun-info": "tun-info", "tun-type": "tun-type", "tun-port": "tun-port",
  "tun-nocsum": "tun-nocsum", "tun-csum": "tun-csum", "tun-remcsum": "tun-remcsum",
  "dry-run": "dry-run",
};

// One string per command, one character per OPT column: '+' required, 'x' illegal,
// '1' at most one of the '1' columns, ' ' optional (reference §1.4; column 34, dry-run,
// is tslb's).
//                                      0         1         2         3
//                                      01234567890123456789012345678901234
const MATRIX: Readonly<Record<Cmd, string>> = {
  "add-service":    "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx",
  "edit-service":   "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx",
  "delete-service": "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
  flush:            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
  list:             " 11xxxxxxxxx11       xxxxxxx xxxxxx",
  "add-server":     "xx+xxx+    xxxxxxxxxxxxxxxxxx     x",
  "delete-server":  "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
  "edit-server":    "xx+xxx+    xxxxxxxxxxxxxxxxxx     x",
  set:              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
  "start-daemon":   "xxxxxxxxxxx xxxxxxx xxxx    xxxxxxx",
  "stop-daemon":    "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxxx",
  restore:          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx ",
  save:             " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
  zero:             "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
};

/** tslb-only options kept out of ipvsadm's matrix (its columns and messages stay
 *  ipvsadm's): health-check settings, legal with -a/-e only; list formats, legal with -L
 *  only; full-NAT service settings, legal with -A/-E only. Misuse gets ipvsadm-style
 *  messages. */
const CHECK_OPTS = ["check", "check-port", "check-path", "check-status", "check-interval",
  "check-timeout", "check-rise", "check-fall", "check-via-vip"] as const;
const LIST_OPTS = ["json", "health", "fullnat-info"] as const;
const SERVICE_OPTS = ["laddr", "proxy-protocol"] as const;
const TSLB_OPTS: ReadonlySet<string> = new Set([...CHECK_OPTS, ...LIST_OPTS, ...SERVICE_OPTS]);
/** The commands each group of TSLB_OPTS is legal with. */
const TSLB_OPT_CMDS: readonly [readonly string[], readonly Cmd[]][] = [
  [CHECK_OPTS, ["add-server", "edit-server"]],
  [LIST_OPTS, ["list"]],
  [[...LIST_FLAGS], ["list"]],
  [SERVICE_OPTS, ["add-service", "edit-service"]],
];

const TUN_COLS: readonly Opt[] = ["tun-port", "tun-nocsum", "tun-csum", "tun-remcsum"];
const TUN_MATRIX: Readonly<Record<TunType, string>> = { ipip: "xxxx", gue: "+111", gre: "x11x" };

/** ipvsadm's generic_opt_check / tunnel_opt_check over one matrix row. */
function checkRow(row: string, cols: readonly number[], has: (c: number) => boolean, ctx: string) {
  let first = -1;
  for (let j = 0; j < cols.length; j++) {
    const c = cols[j];
    const rule = row[j];
    if (!has(c)) {
      if (rule === "+") throw usageError(`You need to supply the '${OPT[c]}' option for the ${ctx}`);
      continue;
    }
    if (rule === "x") throw usageError(`Illegal '${OPT[c]}' option with the ${ctx}`);
    if (rule === "1") {
      if (first < 0) first = c;
      else throw usageError(`The option '${OPT[c]}' conflicts with the '${OPT[first]}' option in the ${ctx}`);
    }
  }
}
const ALL_COLS = OPT.map((_, k) => k);

// ---- value parsers (ipvsadm's helpers) ---------------------------------------------------

const MAX_TIMEOUT = 86400 * 31;
const INT_MAX = 2147483647;
const DEF_SCHED = "wlc";
const SCHEDNAME_MAX = 15; // IP_VS_SCHEDNAME_MAXLEN - 1: strncpy into a 16-byte buffer
const PENAME_MAX = 16;
const IFNAME_MAX = 15;

/** strtol(s, 10) that must consume the whole string (leading blanks and a sign allowed). */
function strtol10(s: string): number | null {
  return /^[ \t\n\v\f\r]*[+-]?\d+$/.test(s) ? Number(s.trim()) : null;
}

/** ipvsadm's string_to_number: -1 on any failure. */
function toNumber(s: string, min: number, max: number): number {
  const n = strtol10(s);
  return n !== null && n >= min && n <= max ? n : -1;
}

/** C atoi: leading blanks, a sign, digits up to the first non-digit; 0 if none. */
function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(s);
  return m ? Number(m[1]) : 0;
}

function numberOrFail(s: string, min: number, max: number, msg: string): number {
  const n = toNumber(s, min, max);
  if (n < 0) throw usageError(msg);
  return n;
}

const parseTimeout = (s: string, min: number, max: number) =>
  numberOrFail(s, min, max, `invalid timeout value \`${s}' specified`);

function parseFwmark(s: string): number {
  const n = strtol10(s);
  if (n === null || n <= 0 || n > 0xffffffff) throw usageError(`invalid fwmark value \`${s}' specified`);
  return n;
}

/** Bits of ServiceSpec.schedFlags. sh-* and mh-* are flag-1/flag-2 under other names. */
const SCHED_FLAG_BITS: Readonly<Record<string, [number, string | null]>> = {
  "flag-1": [1, null], "flag-2": [2, null], "flag-3": [4, null],
  "sh-fallback": [1, "sh"], "sh-port": [2, "sh"], "mh-fallback": [1, "mh"], "mh-port": [2, "mh"],
};

function parseSchedFlags(sched: string, arg: string): number {
  let flags = 0;
  const names = arg.split(",").filter((f) => f !== "");
  // ipvsadm crashes on an argument made only of commas; tslb calls it an invalid flag.
  if (names.length === 0) throw usageError(`invalid scheduler flag \`${arg}'`);
  for (const f of names) {
    const bit = Object.hasOwn(SCHED_FLAG_BITS, f) ? SCHED_FLAG_BITS[f] : undefined;
    if (!bit) throw usageError(`invalid scheduler flag \`${f}'`);
    if (bit[1] !== null && bit[1] !== sched) throw usageError(`incompatible scheduler flag \`${f}'`);
    flags |= bit[0];
  }
  return flags;
}

type Proto = "tcp" | "udp" | "sctp";

interface ParsedAddr { af: Af; addr: string; port: number | null }

/** ipvsadm's parse_service for -t/-u/--sctp-service/-r: null = SERVICE_NONE. `port` is
 *  null when no port was given (SERVICE_ADDR without SERVICE_PORT). */
function parseAddrPort(buf: string, proto: Proto | null, env: ResolveEnv): ParsedAddr | null {
  if (/^\d*$/.test(buf)) return null;
  let host = buf;
  let portText: string | null = null;
  if (buf.startsWith("[")) {
    const close = buf.indexOf("]");
    if (close < 0 || buf[close + 1] !== ":") return null;
    host = buf.slice(1, close);
    portText = buf.slice(close + 2);
  }
  let af: Af;
  let addr: string;
  const v6 = host.includes(":") ? parseIPv6(host) : null; // every IPv6 text has a colon
  if (v6) {
    af = 6;
    addr = formatIPv6(v6);
  } else {
    // Like ipvsadm, a bracketed non-IPv6 host loses its bracketed port here: the port is
    // looked for again, inside the brackets only.
    const colon = host.lastIndexOf(":");
    portText = colon < 0 ? null : host.slice(colon + 1);
    if (colon >= 0) host = host.slice(0, colon);
    const v4 = parseIPv4(host) ?? (host === "" ? null : env.resolveHost(host));
    if (v4 === null) return null;
    af = 4;
    addr = formatIPv4(v4);
  }
  if (portText === null) return { af, addr, port: null };
  let port = toNumber(portText, 0, 65535);
  if (port < 0 && proto !== null) port = env.resolveService(portText, proto) ?? -1;
  return port < 0 ? null : { af, addr, port };
}

// ---- the parse -----------------------------------------------------------------------

/** The state ipvsadm's struct ipvs_command_entry holds while options are processed. */
interface State {
  cmd: Cmd;
  opts: Set<number>;
  svc: {
    af: Af | 0; proto: Proto | null; addr: string; port: number; fwmark: number;
    sched: string; persistent: boolean; timeoutSec: number;
    /** IPv4: the mask as int32; IPv6: the prefix length (one field, as in ipvsadm). */
    netmask: number;
    pe: string; ops: boolean; schedFlags: number;
  };
  dest: Dest;
  daemon: SyncDaemonSpec;
  /** --set values. */
  timeouts?: Timeouts;
  /** tslb-only options (TSLB_OPTS) in command-line order, with their arguments. */
  tslb: Map<string, string | null>;
}

/** ipvsadm's tun_flags value (nocsum 0, csum 1, remcsum 2) -> TunCsum. */
const TUN_CSUM: readonly TunCsum[] = ["nocsum", "csum", "remcsum"];

const TRY = (prog: string) =>
  new IpvsError("USAGE", `Try \`${prog} -h' or '${prog} --help' for more information.`, 255);

/**
 * Parse one ipvsadm command line (argv without the program name).
 * @param env  name lookups for host and service names (default: /etc/hosts, /etc/services)
 * @param prog the program name used in the "Try ..." message
 */
export function parseArgs(argv: readonly string[], env: ResolveEnv = systemNames(), prog = "ipvsadm"): Invocation {
  if (argv.length === 0) return { kind: "list", opts: listOptions(new Set()) };
  const leftovers: string[] = [];
  const flags = new Set<string>();
  const scan = popt(argv, leftovers, flags);

  const first = scan.next();
  if (first.done || "error" in first.value) throw TRY(prog);
  const { tag, arg } = first.value;
  if (tag === "h") return { kind: "help" };
  if (tag === "v") return { kind: "version" };
  const cmd = Object.hasOwn(CMD_BY_TAG, tag) ? CMD_BY_TAG[tag] : undefined;
  if (!cmd) throw TRY(prog);
  if (cmd === "list") for (const f of LIST_FLAGS) flags.add(f);

  const st: State = {
    cmd,
    opts: new Set(),
    svc: {
      af: 0, proto: null, addr: "", port: 0, fwmark: 0, sched: "", persistent: false,
      timeoutSec: 0, netmask: -1, pe: "", ops: false, schedFlags: 0,
    },
    dest: {
      af: 4, addr: "", port: 0, fwd: "route", weight: 1, uThreshold: 0, lThreshold: 0,
      tunType: "ipip", tunPort: 0, tunCsum: "nocsum",
    },
    daemon: { state: "master", mcastIfn: "", syncId: 0, mcastGroup: "", mcastPort: 0, mcastTtl: 0, syncMaxlen: 0 },
    tslb: new Map(),
  };
  if (cmd === "start-daemon" || cmd === "stop-daemon") {
    if (arg === "master" || arg === "backup") st.daemon.state = arg;
    else throw usageError(cmd === "start-daemon" ? "illegal start-daemon parameter specified" : "illegal start_daemon specified");
  }

  let schedFlagsArg = "";
  let tunFlags = 0;
  for (const ev of scan) {
    if ("error" in ev) throw new IpvsError("USAGE", `${ev.word}: ${ev.error}`, 255);
    if (TSLB_OPTS.has(ev.tag)) {
      if (st.tslb.has(ev.tag)) throw usageError(`multiple '${ev.tag}' options specified`);
      st.tslb.set(ev.tag, ev.arg);
      continue;
    }
    const opt = Object.hasOwn(OPT_BY_TAG, ev.tag) ? OPT_BY_TAG[ev.tag] : undefined;
    if (opt) {
      if (st.opts.has(col(opt))) throw usageError(`multiple '${opt}' options specified`);
      st.opts.add(col(opt));
    }
    const a = ev.arg ?? "";
    switch (ev.tag) {
      case "t": case "u": case "sctp-service": {
        const proto: Proto = ev.tag === "t" ? "tcp" : ev.tag === "u" ? "udp" : "sctp";
        st.svc.proto = proto;
        const p = parseAddrPort(a, proto, env);
        if (!p) throw usageError("illegal virtual server address[:port] specified");
        st.svc.af = p.af;
        st.svc.addr = p.addr;
        if (p.af === 6) st.svc.netmask = 128;
        if (p.port !== null) st.svc.port = p.port;
        break;
      }
      case "f":
        st.svc.af = 4;
        st.svc.proto = "tcp"; // ipvsadm's "sane value": fwmark services look ports up as tcp
        st.svc.fwmark = parseFwmark(a);
        break;
      case "s": st.svc.sched = a.slice(0, SCHEDNAME_MAX); break;
      case "p":
        st.svc.persistent = true;
        st.svc.timeoutSec = ev.arg === null ? DEFAULT_PERSISTENT_TIMEOUT : parseTimeout(a, 1, MAX_TIMEOUT);
        break;
      case "M":
        if (st.svc.af !== 6) {
          const m = parseIPv4(a) ?? (a === "" ? null : env.resolveHost(a));
          if (m === null) throw usageError("illegal virtual server persistent mask specified");
          st.svc.netmask = m;
        } else {
          const n = atoi(a);
          if (n < 1 || n > 128) throw usageError("illegal ipv6 netmask specified");
          st.svc.netmask = n;
        }
        break;
      case "r": {
        const p = parseAddrPort(a, st.svc.proto, env);
        if (!p) throw usageError("illegal real server address[:port] specified");
        st.dest.af = p.af;
        st.dest.addr = p.addr;
        st.dest.port = p.port ?? st.svc.port;
        break;
      }
      case "g": st.dest.fwd = "route"; break;
      case "i": st.dest.fwd = "tunnel"; break;
      case "m": st.dest.fwd = "masq"; break;
      case "fullnat": st.dest.fwd = "fullnat"; break;
      case "w": st.dest.weight = numberOrFail(a, 0, 65535, "illegal weight specified"); break;
      case "x": st.dest.uThreshold = numberOrFail(a, 0, INT_MAX, "illegal u_threshold specified"); break;
      case "y": st.dest.lThreshold = numberOrFail(a, 0, INT_MAX, "illegal l_threshold specified"); break;
      case "mcast-interface": st.daemon.mcastIfn = a.slice(0, IFNAME_MAX); break;
      case "syncid": st.daemon.syncId = numberOrFail(a, 0, 255, "illegal syncid specified"); break;
      case "6":
        if (!st.svc.fwmark) throw usageError("-6 used before -f\n"); // ipvsadm prints an empty line too
        st.svc.af = 6;
        st.svc.netmask = 128;
        break;
      case "o": st.svc.ops = true; break;
      case "pe": st.svc.pe = a.slice(0, PENAME_MAX); break;
      case "b": schedFlagsArg = a.slice(0, 127); break;
      case "mcast-group": st.daemon.mcastGroup = parseMcastGroup(a); break;
      case "mcast-port": st.daemon.mcastPort = numberOrFail(a, 1, 65535, "illegal mcast-port specified"); break;
      case "mcast-ttl": st.daemon.mcastTtl = numberOrFail(a, 1, 255, "illegal mcast-ttl specified"); break;
      case "sync-maxlen": st.daemon.syncMaxlen = numberOrFail(a, 1, 65535 - 20 - 8, "illegal sync-maxlen specified"); break;
      case "tun-type":
        if (a !== "ipip" && a !== "gue" && a !== "gre") throw usageError("illegal tunnel type specified");
        st.dest.tunType = a;
        break;
      case "tun-port": st.dest.tunPort = numberOrFail(a, 1, 65535, "illegal tunnel port specified"); break;
      case "tun-csum": tunFlags |= 1; break;
      case "tun-remcsum": tunFlags |= 2; break;
      default:
        // A command after the first option, -h, -v: ipvsadm no longer knows them here.
        if (!opt && ev.tag !== "sort") throw usageError(`invalid option \`${ev.word}'`);
    }
  }

  if (cmd === "set") {
    if (leftovers.length < 3) throw usageError("--set option requires 3 timeout values");
    const [tcp, tcpfin, udp] = leftovers.splice(0, 3).map((v) => parseTimeout(v, 0, MAX_TIMEOUT));
    st.timeouts = { tcp, tcpfin, udp };
  }
  if (leftovers.length > 0) throw usageError(`unexpected argument ${leftovers[0]}`);
  if (schedFlagsArg !== "") st.svc.schedFlags = parseSchedFlags(st.svc.sched || DEF_SCHED, schedFlagsArg);
  st.dest.tunCsum = TUN_CSUM[tunFlags] ?? "nocsum";

  checkRow(MATRIX[cmd], ALL_COLS, (c) => st.opts.has(c), `'${cmd}' command`);
  for (const name of st.tslb.keys()) {
    const legal = TSLB_OPT_CMDS.some(([names, cmds]) => names.includes(name) && cmds.includes(cmd));
    if (!legal) throw usageError(`Illegal '${name}' option with the '${cmd}' command`);
  }
  return finish(st);
}

/** Seconds with up to millisecond precision, 0 < s <= 3600, as milliseconds. */
function checkSeconds(a: string, what: string): number {
  const ms = /^\d+(\.\d{1,3})?$/.test(a) ? Math.round(Number(a) * 1000) : 0;
  if (ms <= 0 || ms > 3600_000) throw usageError(`illegal check ${what} specified`);
  return ms;
}

/**
 * The --check* options of -a/-e as a HealthCheck (kind "none" for `--check none`), or
 * undefined when none was given. Called after the destination's port is final.
 */
function parseCheck(o: ReadonlyMap<string, string | null>, dest: Dest): HealthCheck | undefined {
  const given = CHECK_OPTS.filter((n) => o.has(n));
  if (given.length === 0) return undefined;
  const kind = o.get("check");
  if (kind === undefined || kind === null) throw usageError(`You need to supply the 'check' option with the '${given[0]}' option`);
  if (kind !== "tcp" && kind !== "http" && kind !== "udp" && kind !== "none") throw usageError("illegal check type specified");
  const c: HealthCheck = { kind: kind as CheckKind, ...CHECK_DEFAULTS };
  for (const n of given) {
    if (n === "check") continue;
    if (kind === "none" || ((n === "check-path" || n === "check-status") && kind !== "http")) {
      throw usageError(`Illegal '${n}' option with the '${kind}' check type`);
    }
    const a = o.get(n) ?? "";
    switch (n) {
      case "check-port": c.port = numberOrFail(a, 1, 65535, "illegal check port specified"); break;
      case "check-path":
        // One -R word: printable, no blanks.
        if (!/^\/[\x21-\x7e]*$/.test(a)) throw usageError("illegal check path specified");
        c.path = a;
        break;
      case "check-status": c.status = numberOrFail(a, 100, 599, "illegal check status specified"); break;
      case "check-interval": c.intervalMs = checkSeconds(a, "interval"); break;
      case "check-timeout": c.timeoutMs = checkSeconds(a, "timeout"); break;
      case "check-rise": c.rise = numberOrFail(a, 1, 1000, "illegal check rise specified"); break;
      case "check-fall": c.fall = numberOrFail(a, 1, 1000, "illegal check fall specified"); break;
      case "check-via-vip":
        if (dest.fwd === "masq" || dest.fwd === "fullnat") throw usageError("Check option 'check-via-vip' conflicts with forward method");
        c.viaVip = true;
        break;
    }
  }
  if (kind === "none") return c;
  if (c.port === dest.port) c.port = 0; // the default: only a different port is kept (and saved)
  if (c.port === 0 && dest.port === 0) throw usageError("You need to supply the 'check-port' option for a server without a port");
  return c;
}

/**
 * --laddr ADDR[,ADDR...]: canonical addresses of the service's family `af`, in the order
 * given. Numeric only (no host names); IPv6 bare or in brackets. A bad, repeated or
 * wrong-family address is an error, as a bad -t/-r address is.
 */
function parseLaddrs(arg: string, af: Af): string[] {
  const out: string[] = [];
  for (const word of arg.split(",")) {
    const text = af === 6 && /^\[.*\]$/.test(word) ? word.slice(1, -1) : word;
    const addr = text === "" ? null : canonicalAddr(af, text);
    if (addr === null || out.includes(addr)) {
      throw usageError(`illegal local address \`${word}' specified`);
    }
    out.push(addr);
  }
  return out;
}

/** --proxy-protocol v1|v2 as ServiceSpec.proxyProtocol. */
function parseProxyProtocol(arg: string): 1 | 2 {
  if (arg === "v1") return 1;
  if (arg === "v2") return 2;
  throw usageError(`illegal proxy-protocol version \`${arg}' specified (v1 or v2)`);
}

function parseMcastGroup(a: string): string {
  if (a.includes(":")) {
    const w = parseIPv6(a);
    if (!w || (w[0] >>> 24) !== 0xff) throw usageError(`invalid IPv6 mcast-group \`${a}'`);
    return formatIPv6(w);
  }
  const v4 = parseIPv4Strict(a);
  if (v4 === null || (v4 >>> 28) !== 0xe) throw usageError(`invalid IPv4 mcast-group \`${a}'`);
  return formatIPv4(v4);
}

function keyOf(st: State): ServiceKey {
  const s = st.svc;
  const af: Af = s.af === 6 ? 6 : 4;
  if (s.fwmark) return { kind: "fwm", af, addr: "", port: 0, fwmark: s.fwmark };
  return { kind: (s.proto ?? "tcp") as SvcKind, af, addr: s.addr, port: s.port, fwmark: 0 };
}

function listOptions(opts: Set<number>): ListOptions {
  const has = (o: Opt) => opts.has(col(o));
  return {
    numeric: has("numeric"), connections: has("connection"), timeout: has("timeout"),
    daemon: has("daemon"), stats: has("stats"), rate: has("rate"), thresholds: has("thresholds"),
    persistentConn: has("persistent-conn"), tunInfo: has("tun-info"), exact: has("exact"),
    nosort: has("nosort"),
  };
}

/** ipvsadm's process_options after parsing: command-specific checks, then the result. */
function finish(st: State): Invocation {
  const { cmd, svc, dest } = st;
  const has = (o: Opt) => st.opts.has(col(o));

  if (cmd === "add-service" || cmd === "edit-service") {
    if (!svc.fwmark && !svc.port && !svc.persistent) throw usageError("Zero port specified for non-persistent service");
    if (svc.ops && !svc.fwmark && svc.proto !== "udp") throw usageError("One-Packet Scheduling is only for UDP virtual services");
    if (!svc.sched) svc.sched = DEF_SCHED;
  }
  if (cmd === "add-server" || cmd === "edit-server") {
    // DR and tunnelling cannot map ports: the real server gets the packet's port.
    if (!svc.fwmark && (dest.fwd === "tunnel" || dest.fwd === "route")) dest.port = svc.port;
    // ipvsadm's rule, plus tslb's full NAT, which translates between the families.
    if (dest.af !== svc.af && dest.fwd !== "tunnel" && dest.fwd !== "fullnat") {
      throw usageError("Different address family is allowed only for tunneling servers");
    }
    if (["tun-type", ...TUN_COLS].some((o) => has(o as Opt)) && dest.fwd !== "tunnel") {
      throw usageError("Tunnel options conflict with forward method");
    }
    checkRow(TUN_MATRIX[dest.tunType], TUN_COLS.map(col), (c) => st.opts.has(c), `'${dest.tunType}' tunnel type`);
    const check = parseCheck(st.tslb, dest);
    if (check) dest.check = check;
  }

  switch (cmd) {
    case "list": {
      if ((["connection", "timeout", "daemon"] as Opt[]).some(has) && (["stats", "rate", "thresholds"] as Opt[]).some(has) ||
          (has("timeout") || has("daemon")) && has("persistent-conn")) {
        throw usageError("options conflicts in the list command");
      }
      const opts = listOptions(st.opts);
      if (has("service-address")) opts.key = keyOf(st);
      // tslb's --json (any listing but --timeout/--daemon) and --health (a listing of its own).
      if (st.tslb.has("json")) {
        if (has("timeout") || has("daemon")) throw usageError("options conflicts in the list command");
        opts.json = true;
      }
      if (st.tslb.has("health")) {
        const others: Opt[] = ["connection", "timeout", "daemon", "stats", "rate", "thresholds", "persistent-conn", "tun-info"];
        if (others.some(has)) throw usageError("options conflicts in the list command");
        opts.health = true;
      }
      // tslb's -c --fullnat-info: -c's columns plus each full-NAT connection's local address and port.
      if (st.tslb.has("fullnat-info")) {
        if (!has("connection")) throw usageError("You need to supply the 'connection' option with the 'fullnat-info' option");
        if (has("persistent-conn")) throw usageError("options conflicts in the list command");
        opts.fullnatInfo = true;
      }
      // tslb's --laddr: full NAT's local addresses and their port use (a listing of its own).
      if (st.tslb.has("laddr")) {
        const others: Opt[] = ["connection", "timeout", "daemon", "stats", "rate", "thresholds", "persistent-conn", "tun-info"];
        if (others.some(has) || st.tslb.has("json") || st.tslb.has("health")) throw usageError("options conflicts in the list command");
        opts.laddr = true;
      }
      return { kind: "list", opts };
    }
    case "save": return { kind: "save", numeric: has("numeric") };
    case "restore": return { kind: "restore", dryRun: has("dry-run") };
    case "zero": return has("service-address") ? { kind: "zero", key: keyOf(st) } : { kind: "zero" };
    case "start-daemon":
      if (!st.daemon.mcastIfn) st.daemon.mcastIfn = "eth0";
      return { kind: "start-daemon", daemon: st.daemon };
    case "stop-daemon": return { kind: "stop-daemon", daemon: st.daemon };
    default: return { kind: "apply", cmds: [command(st)] };
  }
}

function serviceSpec(st: State): ServiceSpec {
  const s = st.svc;
  const key = keyOf(st);
  return {
    key,
    sched: s.sched,
    schedFlags: s.schedFlags,
    persistent: s.persistent,
    timeoutSec: s.timeoutSec,
    netmask: key.af === 6 ? String(s.netmask) : formatIPv4(s.netmask),
    pe: s.pe,
    ops: s.ops,
    laddrs: st.tslb.has("laddr") ? parseLaddrs(st.tslb.get("laddr") ?? "", key.af) : [],
    proxyProtocol: st.tslb.has("proxy-protocol") ? parseProxyProtocol(st.tslb.get("proxy-protocol") ?? "") : 0,
  };
}

function command(st: State): Command {
  const key = keyOf(st);
  switch (st.cmd) {
    case "add-service": return { kind: "add-service", svc: serviceSpec(st) };
    case "edit-service": return { kind: "edit-service", svc: serviceSpec(st) };
    case "delete-service": return { kind: "delete-service", key };
    case "flush": return { kind: "clear" };
    case "add-server": return { kind: "add-dest", key, dest: st.dest };
    case "edit-server": return { kind: "edit-dest", key, dest: st.dest };
    case "delete-server": return { kind: "delete-dest", key, addr: st.dest.addr, port: st.dest.port };
    case "set": return { kind: "set-timeouts", timeouts: st.timeouts! };
    default: throw new Error(`command(): no Command for '${st.cmd}'`);
  }
}
