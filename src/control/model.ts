// The rule table as the control plane sees it: plain, JSON-safe objects (strings allowed).
// A RuleSet is a value: applyAll() builds a new one and never mutates its input, so a
// failed command batch (-R) leaves the running rules untouched. Ids for the data plane
// are assigned elsewhere (control/ids.ts) so that two equal RuleSets deep-equal.

/** Transport protocol of an address service; "fwm" marks a firewall-mark service. */
export type SvcKind = "tcp" | "udp" | "sctp" | "fwm";
/** Forwarding method: -m (Masq), -g (Route, ipvsadm's default), -i (Tunnel), and tslb's
 *  --fullnat (FullNat: DPVS's FNAT, both addresses rewritten; the real server sees a local
 *  address of the balancer as the client). */
export type Fwd = "masq" | "route" | "tunnel" | "fullnat";
export type TunType = "ipip" | "gue" | "gre";
export type TunCsum = "nocsum" | "csum" | "remcsum";
export type Af = 4 | 6;

/** Identifies a virtual service. Addresses are canonical text (see wire/addr.ts). */
export interface ServiceKey {
  kind: SvcKind;
  af: Af;
  /** VIP in canonical text; "" for fwmark services. */
  addr: string;
  /** 0..65535; 0 = any port (persistent services only) or fwmark. */
  port: number;
  /** 1..2^32-1 for fwmark services, else 0. */
  fwmark: number;
}

/** Service settings (what -A/-E send; -E replaces all of them, as ipvsadm does). */
export interface ServiceSpec {
  key: ServiceKey;
  sched: string;
  /** Scheduler flag bits: 1 = flag-1 (sh-fallback/mh-fallback), 2 = flag-2 (sh-port/mh-port), 4 = flag-3. */
  schedFlags: number;
  persistent: boolean;
  /** Persistence timeout in seconds (360 when -p has no value); 0 when not persistent. */
  timeoutSec: number;
  /** IPv4: dotted mask ("255.255.255.255" default); IPv6: prefix length as text ("128" default). */
  netmask: string;
  /** Persistence engine name ("" = none). */
  pe: string;
  /** -o one-packet scheduling. */
  ops: boolean;
  /**
   * tslb's --laddr: the local (source) addresses full-NAT destinations are reached from, in
   * canonical text, in the order given; the service's family (a fwmark service's -6 flag).
   * [] = the default: the address the kernel would use toward each real server.
   */
  laddrs: string[];
  /** tslb's --proxy-protocol: 0 = off, 1 = v1 (text), 2 = v2 (binary). */
  proxyProtocol: 0 | 1 | 2;
}

/** A real server of one service. */
export interface Dest {
  af: Af;
  addr: string;
  port: number;
  fwd: Fwd;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  tunType: TunType;
  tunPort: number;
  tunCsum: TunCsum;
  /** tslb-only health check (--check ...); absent when the destination is not checked. */
  check?: HealthCheck;
}

/**
 * What `--check` asks for. "none" appears only in commands (`-e ... --check none` removes a
 * check); a RuleSet never stores it.
 */
export type CheckKind = "tcp" | "http" | "udp" | "none";

/** A destination's health check. Health changes availability, never the rules (STYLE §3.12). */
export interface HealthCheck {
  kind: CheckKind;
  /** Port probed; 0 = the destination's port. */
  port: number;
  /** http: the request path. */
  path: string;
  /** http: the status that passes; 0 = any 2xx or 3xx. */
  status: number;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive successes that bring a failed destination back. */
  rise: number;
  /** Consecutive failures that take a destination out. */
  fall: number;
  /** DR/tunnel: probe VIP:port along the traffic's path instead of RIP:port. */
  viaVip: boolean;
}

/** The defaults of every --check-* setting; -S prints only the settings that differ. */
export const CHECK_DEFAULTS: Readonly<Omit<HealthCheck, "kind">> = {
  port: 0, path: "/", status: 0, intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3, viaVip: false,
};

export interface Service extends ServiceSpec {
  /** Kernel list order: the newest destination first (IPVS inserts at the head). */
  dests: Dest[];
}

export interface Timeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
}

export interface RuleSet {
  /** In creation order (the "kernel order" that --nosort shows). */
  services: Service[];
  timeouts: Timeouts;
}

export const DEFAULT_TIMEOUTS: Timeouts = { tcp: 900, tcpfin: 120, udp: 300 };
export const DEFAULT_PERSISTENT_TIMEOUT = 360;

export function emptyRuleSet(): RuleSet {
  return { services: [], timeouts: { ...DEFAULT_TIMEOUTS } };
}

/** Stable text key of a service, for maps on the control plane (never on the data path). */
export function serviceKeyText(k: ServiceKey): string {
  return k.kind === "fwm" ? `fwm/${k.af}/${k.fwmark}` : `${k.kind}/${k.addr}/${k.port}`;
}

export function sameServiceKey(a: ServiceKey, b: ServiceKey): boolean {
  return a.kind === b.kind && a.af === b.af && a.addr === b.addr && a.port === b.port && a.fwmark === b.fwmark;
}

export function destKeyText(d: { addr: string; port: number }): string {
  return `${d.addr}/${d.port}`;
}
