// The control socket protocol: one JSON request line, one JSON reply line; the -R text
// of a restore request and the text of a listing reply travel raw after their line
// (framing.ts). The byte-exact ipvsadm formats live in one place (cli/format_list.ts and its
// neighbours) and are testable without a daemon; the daemon calls them for -L and -S, so
// that a listing of 100 000 destinations crosses the socket as text, not as data.
import type { Command, ListOptions } from "./commands.ts";
import type { Dest, RuleSet, Service, ServiceKey, Timeouts } from "./model.ts";
import type { NameFiles } from "../cli/names.ts";

export type Request =
  /** `source` names who applies (for the log and tslb_rule_applies_total): "cli" (default) or "restore" (-R). */
  | { op: "apply"; cmds: Command[]; source?: string }
  /**
   * -R: the rule text itself, parsed and applied by the daemon all or nothing against its
   * rules of that moment (sending parsed Commands cost 27 MB of JSON for 110 000 lines).
   * `prog` names the program in usage messages; `names` is the CLI's /etc/hosts and
   * /etc/services text, so that names resolve as the CLI sees them, as they always did.
   */
  | { op: "restore"; text: string; prog: string; names: NameFiles }
  | { op: "zero"; key?: ServiceKey }
  /**
   * -L in every form but -c and --laddr, as the text to print (cli/list_text.ts). `names`:
   * the CLI's /etc/hosts and /etc/services text, for a listing that is not numeric.
   */
  | { op: "list"; opts: ListOptions; names?: NameFiles }
  /** -S as the text to print, likewise. */
  | { op: "save"; numeric: boolean; names?: NameFiles }
  | { op: "conns" }
  /** tslb's -L --laddr: full NAT's local addresses per destination and their port use. */
  | { op: "laddrs" }
  | { op: "rules" }
  | { op: "drops" }
  | { op: "ping" }
  | { op: "status" }
  | { op: "shutdown" };

export type Reply =
  | { ok: true; data?: unknown }
  | { ok: false; code: string; message: string; exit: number; line?: number };

/** The five IPVS counters (ip_vs_stats): connections, packets and bytes each way. */
export interface Stats {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
}

export interface DestView extends Dest {
  activeConns: number;
  inactConns: number;
  persistConns: number;
  stats: Stats;
  /** Rates from the 2-second estimator: cps, inpps, outpps, inbps, outbps in the same fields. */
  rate: Stats;
  /** Health-check state, when the destination has a check (-L --health, --json, /metrics). */
  health?: HealthView;
}

/** One destination's health as the monitor sees it (health/monitor.ts). */
export interface HealthView {
  check: "tcp" | "http" | "udp";
  state: "unknown" | "up" | "down";
  /** Whether the data plane gives it new connections (anything but down). */
  available: boolean;
  /** The last probe: null before the first one ends. */
  last: { ok: boolean; ms: number; detail: string } | null;
  /** Epoch milliseconds of the last probe's end (0: none yet) and of the last state change. */
  lastCheckMs: number;
  changedMs: number;
  transitions: number;
}

export interface ServiceView extends Omit<Service, "dests"> {
  stats: Stats;
  rate: Stats;
  /** Kernel order (newest first); the formatter sorts unless --nosort. */
  dests: DestView[];
}

export interface ListReply {
  /** Connection hash size shown in the "IP Virtual Server version 1.2.1 (size=N)" header. */
  size: number;
  services: ServiceView[];
  timeouts: Timeouts;
}

/** One connection entry as -c shows it. */
export interface ConnView {
  proto: string;            // "TCP" | "UDP" | "IP" (fwmark template)
  expireSec: number;        // remaining seconds
  state: string;            // "ESTABLISHED", "UDP", "NONE", ...
  caddr: string; cport: number;
  vaddr: string; vport: number;
  daddr: string; dport: number;
  af: 4 | 6;
  /** Persistence-engine name and data, shown by -c --persistent-conn when both are set. */
  peName?: string;
  peData?: string;
  /** Full NAT only (tslb's -c --fullnat-info): the balancer's local address and port toward the real server. */
  laddr?: string;
  lport?: number;
}

/** -L --laddr: full NAT's local-port pool and, per full-NAT destination, its local addresses. */
export interface LaddrReply {
  /** The pool, inclusive (--fullnat-ports): each (local address, real server) pair has all of it. */
  ports: [number, number];
  /** Every service, in kernel order (the CLI shows those with full-NAT destinations, or the one asked for). */
  services: LaddrServiceView[];
}

export interface LaddrServiceView {
  key: ServiceKey;
  /** Its full-NAT destinations only, in kernel order. */
  dests: LaddrDestView[];
}

export interface LaddrDestView {
  af: 4 | 6;
  addr: string;
  port: number;
  /**
   * The local addresses in use toward it: the configured ones (--laddr, else the one the
   * kernel would pick; none without a route) and then any that live connections still
   * hold but that are no longer configured (`configured: false`, after an -E).
   */
  laddrs: { addr: string; inUse: number; configured: boolean }[];
}

export type RulesReply = RuleSet;

/** What a running daemon reports about itself (tslb doctor, scripts). */
export interface StatusReply {
  pid: number;
  socket: string;
  tun: string;
  tap: string;
  bridge: string;
  vipDev: string;
  connections: number;
  connMax: number;
  /** Data-plane workers (TUN queues) and whether the TUN offloads are on. */
  workers: number;
  offload: boolean;
  /** The rps_cpus mask set on tslb's TUN queues ("" = none: --rps off, or the kernel refused). */
  rps: string;
  /** The XDP hand-off's interfaces with their mode ("lbc (generic)"), and its steal-map keys; [] = off. */
  xdp?: string[];
  xdpKeys?: number;
  /** --xdp-forward: whether the hand-off takes DR real servers' replies. */
  xdpForward?: boolean;
  /** --bulk-offload: "on (ifaces)", "off", or "off: why". */
  bulkOffload?: string;
}
