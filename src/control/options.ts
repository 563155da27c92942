// tslb's own options (not ipvsadm's): role flags and daemon settings. Each daemon
// option has an environment variable TSLB_<NAME>; an auto-started daemon takes its
// settings from those (DESIGN §2). These are removed from argv before ipvsadm parsing.
import { availableParallelism } from "node:os";
import { type DataplaneSysctls, FULLNAT_PORTS_DEFAULT } from "../dataplane/snapshot.ts";

export interface GlobalOptions {
  socket: string;
  tun: string;
  /** TAP device for direct routing, and the bridge it joins ("" = stays unattached). */
  tap: string;
  bridge: string;
  vipDev: string;
  connMax: number;
  /** IPVS's data-path sysctls under their IPVS names (see DEFAULT_SYSCTLS). */
  sysctl: DataplaneSysctls;
  foreground: boolean;
  /** --state FILE: the rules saved here after every change and loaded at start ("" = none). */
  state: string;
  /** --rules FILE: -R input loaded at start and again on SIGHUP ("" = none). */
  rules: string;
  /** --metrics [ADDR:]PORT: Prometheus endpoint ("" = off); a bare port binds 127.0.0.1. */
  metrics: string;
  /** --fullnat-ports LO-HI: full NAT's local-port pool (inclusive). */
  fullnatPorts: [number, number];
  /** --log-json: log lines as JSON. */
  logJson: boolean;
  /** --offload on|off: TUN checksum and TSO offloads (IFF_VNET_HDR), and with --xdp the sockets' transmit checksum offload. Default on. */
  offload: boolean;
  /** --workers N: data-plane workers, one TUN queue each. */
  workers: number;
  /** --coalesce on|off: join a flow's small TCP segments into one, and (with offloads) its UDP datagrams into one GSO write. */
  coalesce: boolean;
  /** --rps on|off: steer the kernel's work on what tslb writes to all allowed CPUs (RPS on its TUN and TAP). */
  rps: boolean;
  /**
   * --xdp IF[,IF...]: interfaces whose NAT frames an XDP program hands straight to tslb
   * through AF_XDP sockets (io/xdp.ts); [] = off, the TUN carries everything.
   */
  xdp: string[];
  /**
   * --xdp-mode generic|native: where the XDP program runs. Generic (the kernel, on socket
   * buffers) leaves the interfaces' offloads alone, so TCP super-packets still reach the
   * TUN whole; native (the driver) is cheaper per frame, but a veth then stops its peer's
   * segmentation offload, and bulk transfers crawl through the sockets frame by frame.
   */
  xdpMode: "generic" | "native";
  /**
   * --xdp-forward on|off: when this host is the DR real servers' router, the XDP programs
   * take their replies and tslb routes them on to the client (dataplane/xdp_path.ts),
   * instead of leaving them to the host's bridge and routing.
   */
  xdpForward: boolean;
  /**
   * --bulk-offload on|off: with --xdp, the kernel rewrites established NAT and full-NAT
   * TCP connections' bulk frames itself (io/tc_offload.ts) instead of passing them through
   * the TUN.
   */
  bulkOffload: boolean;
  /**
   * --xdp-join on|off: with --xdp and --coalesce, the hand-off joins a flow's back-to-back
   * small TCP segments too (default on): more requests per second, a somewhat longer tail
   * at low concurrency (bench/RESULTS.md, 19:46–20:21).
   */
  xdpJoin: boolean;
  /** Role chosen by the first argument: cli (ipvsadm), daemon, shutdown, simulate. */
  role: "cli" | "daemon" | "shutdown" | "simulate";
}

export const DEFAULT_SOCKET = "/run/tslb/tslb.sock";

/**
 * tslb's defaults for IPVS's sysctls, chosen to avoid IPVS's two worst production
 * failures: expire_nodest_conn=1 (IPVS: 0) so a removed server's connections expire on
 * their next packet instead of black-holing for minutes; conn_reuse_mode=3 so a new SYN
 * on a TIME_WAIT, CLOSE or FIN_WAIT entry is rescheduled at once (IPVS 1: TIME_WAIT and
 * CLOSE only, FIN_WAIT only for DR/TUN). expire_quiescent_template stays IPVS's 0: a
 * quiesced server keeps its persistent clients while it drains.
 */
export const DEFAULT_SYSCTLS: DataplaneSysctls = { expireNodestConn: 1, expireQuiescentTemplate: 0, connReuseMode: 3, mssClamp: 0, sloppyTcp: 2, dropPacket: 1 };
/** Default connection-table capacity: 2^20 entries = 128 MiB of shared memory (conntrack/table.ts connTableBytes). */
export const DEFAULT_CONN_MAX = 1 << 20;
/**
 * Data-plane workers by default: one per core but one (at most 8), not DESIGN §2's one per
 * core. Every packet also costs kernel time in softirq and in the servers' stacks; on the
 * 2-core bench machine two workers lost established flows under a full-rate SYN flood
 * that one worker carried with zero errors (bench/RESULTS.md). `--workers` overrides.
 */
export const DEFAULT_WORKERS = Math.max(1, Math.min(8, availableParallelism() - 1));

type OtherField = "connMax" | "fullnatPorts" | "offload" | "workers" | "coalesce" | "rps" | "xdp" | "xdpMode" | "xdpForward" | "bulkOffload" | "xdpJoin";
type TextField = "socket" | "tun" | "tap" | "bridge" | "vipDev" | "state" | "rules" | "metrics";
type SysctlField = keyof DataplaneSysctls;

/** Options that take a value: their environment variable and where the value goes. */
const VALUED: Record<string, { env: string; field: TextField | OtherField | SysctlField }> = {
  "--socket": { env: "TSLB_SOCKET", field: "socket" },
  "--tun": { env: "TSLB_TUN", field: "tun" },
  "--tap": { env: "TSLB_TAP", field: "tap" },
  "--bridge": { env: "TSLB_BRIDGE", field: "bridge" },
  "--vip-dev": { env: "TSLB_VIP_DEV", field: "vipDev" },
  "--conn-max": { env: "TSLB_CONN_MAX", field: "connMax" },
  "--fullnat-ports": { env: "TSLB_FULLNAT_PORTS", field: "fullnatPorts" },
  "--expire-nodest-conn": { env: "TSLB_EXPIRE_NODEST_CONN", field: "expireNodestConn" },
  "--expire-quiescent-template": { env: "TSLB_EXPIRE_QUIESCENT_TEMPLATE", field: "expireQuiescentTemplate" },
  "--conn-reuse-mode": { env: "TSLB_CONN_REUSE_MODE", field: "connReuseMode" },
  "--mss-clamp": { env: "TSLB_MSS_CLAMP", field: "mssClamp" },
  "--sloppy-tcp": { env: "TSLB_SLOPPY_TCP", field: "sloppyTcp" },
  "--drop-packet": { env: "TSLB_DROP_PACKET", field: "dropPacket" },
  "--state": { env: "TSLB_STATE", field: "state" },
  "--rules": { env: "TSLB_RULES", field: "rules" },
  "--metrics": { env: "TSLB_METRICS", field: "metrics" },
  "--offload": { env: "TSLB_OFFLOAD", field: "offload" },
  "--workers": { env: "TSLB_WORKERS", field: "workers" },
  "--coalesce": { env: "TSLB_COALESCE", field: "coalesce" },
  "--rps": { env: "TSLB_RPS", field: "rps" },
  "--xdp": { env: "TSLB_XDP", field: "xdp" },
  "--xdp-mode": { env: "TSLB_XDP_MODE", field: "xdpMode" },
  "--xdp-forward": { env: "TSLB_XDP_FORWARD", field: "xdpForward" },
  "--bulk-offload": { env: "TSLB_BULK_OFFLOAD", field: "bulkOffload" },
  "--xdp-join": { env: "TSLB_XDP_JOIN", field: "xdpJoin" },
};

const SYSCTL_MAX: Record<SysctlField, number> = { expireNodestConn: 1, expireQuiescentTemplate: 1, connReuseMode: 3, mssClamp: 1, sloppyTcp: 2, dropPacket: 1 };

function setValued(opts: GlobalOptions, name: string, field: TextField | OtherField | SysctlField, v: string): void {
  if (field === "connMax") opts.connMax = parseConnMax(v);
  else if (field === "fullnatPorts") opts.fullnatPorts = parsePortRange(name, v);
  else if (field === "offload" || field === "coalesce" || field === "rps" || field === "xdpForward" || field === "bulkOffload" || field === "xdpJoin") {
    if (v !== "on" && v !== "off") throw new OptionError(`${name} wants on or off, not '${v}'`);
    opts[field] = v === "on";
  } else if (field === "workers") opts.workers = parseWorkers(v);
  else if (field === "xdp") opts.xdp = parseInterfaces(name, v);
  else if (field === "xdpMode") {
    if (v !== "generic" && v !== "native") throw new OptionError(`--xdp-mode wants generic or native, not '${v}'`);
    opts.xdpMode = v;
  }
  else if (field in SYSCTL_MAX) {
    const f = field as SysctlField;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > SYSCTL_MAX[f]) throw new OptionError(`${name} must be an integer from 0 to ${SYSCTL_MAX[f]}`);
    opts.sysctl[f] = n;
  } else {
    if (field === "metrics") parseListen(v); // refuse a bad address before anything starts
    opts[field as TextField] = v;
  }
}

/**
 * --metrics ADDR:PORT, [IPV6]:PORT, :PORT or PORT (the last two bind 127.0.0.1: metrics
 * stay on the host unless an address is given).
 */
export function parseListen(v: string): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]:|([^:[\]]*):)?(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new OptionError(`--metrics wants [ADDR:]PORT, not '${v}'`);
  return { hostname: m[1] ?? (m[2] || "127.0.0.1"), port };
}

/** IF[,IF...]: distinct interface names (IFNAMSIZ: at most 15 bytes, no '/', ':' or blanks); "off" = none. */
function parseInterfaces(name: string, v: string): string[] {
  if (v === "off") return [];
  const names = v.split(",");
  for (const n of names) {
    if (!/^[^\s/:,]{1,15}$/.test(n)) throw new OptionError(`${name} wants interface names separated by commas, not '${v}'`);
  }
  if (new Set(names).size !== names.length) throw new OptionError(`${name} names an interface twice: '${v}'`);
  return names;
}

/** LO-HI with 1 <= LO <= HI <= 65534 (a policy rule's port range cannot end at 65535). */
function parsePortRange(name: string, v: string): [number, number] {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(v);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2]) : NaN;
  if (!m || lo < 1 || hi > 65534 || lo > hi) throw new OptionError(`${name} wants a port range LO-HI within 1-65534, not '${v}'`);
  return [lo, hi];
}

export class OptionError extends Error {}

/** Splits argv into tslb's own options and the rest (ipvsadm's argv, order kept). */
export function splitGlobalOptions(argv: string[], env: Record<string, string | undefined>): { opts: GlobalOptions; rest: string[] } {
  const opts: GlobalOptions = {
    socket: env.TSLB_SOCKET || DEFAULT_SOCKET,
    tun: env.TSLB_TUN || "tslb0",
    tap: "tslbtap0",
    bridge: "",
    vipDev: env.TSLB_VIP_DEV || "",
    connMax: DEFAULT_CONN_MAX,
    fullnatPorts: [FULLNAT_PORTS_DEFAULT[0], FULLNAT_PORTS_DEFAULT[1]],
    sysctl: { ...DEFAULT_SYSCTLS },
    foreground: false,
    state: "",
    rules: "",
    metrics: "",
    logJson: env.TSLB_LOG_JSON === "1",
    offload: true,
    workers: DEFAULT_WORKERS,
    coalesce: true,
    rps: true,
    xdp: [],
    xdpMode: "generic",
    xdpForward: true,
    bulkOffload: true,
    xdpJoin: true,
    role: "cli",
  };
  for (const [name, spec] of Object.entries(VALUED)) {
    const v = env[spec.env];
    if (v) setValued(opts, name, spec.field, v);
  }
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    // --simulate has a --rules of its own.
    const spec = name === "--rules" && opts.role === "simulate" ? undefined : VALUED[name];
    if (spec) {
      const v = eq > 0 && name !== a ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new OptionError(`option ${name} needs a value`);
      setValued(opts, name, spec.field, v);
    } else if (a === "--foreground") {
      opts.foreground = true;
    } else if (a === "--log-json") {
      opts.logJson = true;
    } else if ((a === "--daemon" || a === "--shutdown" || a === "--simulate") && rest.length === 0 && opts.role === "cli") {
      // Only as the first word: ipvsadm's own `-L --daemon` (sync daemons) stays a list option.
      opts.role = a === "--daemon" ? "daemon" : a === "--shutdown" ? "shutdown" : "simulate";
    } else {
      rest.push(a);
    }
  }
  return { opts, rest };
}

/** Most data-plane workers (TUN queues); the kernel allows 256 queues per device. */
export const MAX_WORKERS = 64;

function parseWorkers(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) throw new OptionError(`--workers must be an integer from 1 to ${MAX_WORKERS}`);
  return n;
}

function parseConnMax(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 16 || n > 1 << 26) throw new OptionError(`--conn-max must be an integer from 16 to ${1 << 26}`);
  return n;
}

/** The argv that starts a daemon with the same settings as this process. */
export function daemonArgs(o: GlobalOptions): string[] {
  const a = ["--daemon", "--foreground", "--socket", o.socket, "--tun", o.tun, "--conn-max", String(o.connMax),
    "--expire-nodest-conn", String(o.sysctl.expireNodestConn), "--expire-quiescent-template", String(o.sysctl.expireQuiescentTemplate),
    "--conn-reuse-mode", String(o.sysctl.connReuseMode), "--mss-clamp", String(o.sysctl.mssClamp), "--sloppy-tcp", String(o.sysctl.sloppyTcp),
    "--drop-packet", String(o.sysctl.dropPacket)];
  if (o.vipDev) a.push("--vip-dev", o.vipDev);
  a.push("--tap", o.tap);
  if (o.bridge) a.push("--bridge", o.bridge);
  if (o.state) a.push("--state", o.state);
  if (o.rules) a.push("--rules", o.rules);
  if (o.metrics) a.push("--metrics", o.metrics);
  if (o.logJson) a.push("--log-json");
  a.push("--offload", o.offload ? "on" : "off", "--workers", String(o.workers), "--coalesce", o.coalesce ? "on" : "off", "--rps", o.rps ? "on" : "off");
  if (o.xdp.length > 0) a.push("--xdp", o.xdp.join(","), "--xdp-mode", o.xdpMode, "--xdp-forward", o.xdpForward ? "on" : "off",
    "--bulk-offload", o.bulkOffload ? "on" : "off", "--xdp-join", o.xdpJoin ? "on" : "off");
  return a;
}
