// What tslb asks of the kernel's routing, and nothing more (DESIGN §3): the VIP routes
// into the TUN, the policy rules that bring masqueraded real servers' replies back into
// the TUN, and optional proxy-ARP entries for VIPs. Every change goes through rtnetlink
// (no `ip` binary: minimal containers have none) and is undone on delete or shutdown.
// planNetwork() is pure; NetworkState diffs plans against what it installed.
import type { RtNetlink } from "../io/rtnetlink.ts";
import { SysError } from "../io/libc.ts";
import { sysctlRead, sysctlWrite } from "../io/sysctl.ts";
import { fullNatLocals } from "./compile.ts";
import type { Dest, RuleSet } from "./model.ts";

/** Routing table that holds "default dev <tun>" for reply traffic; "ts" in ASCII. */
export const TSLB_TABLE = 0x7473;
/** Rule priorities: the TUN's own writes are exempt first, then the reply rules. Both before main (32766). */
export const PRIO_EXEMPT = 29000;
export const PRIO_REPLY = 29001;
/**
 * Full NAT's replies are addressed to the host's own address, and the kernel's "lookup
 * local" rule (priority 0) would deliver them to the host's stack. While a full-NAT
 * destination exists, that rule moves to PRIO_LOCAL (as Cilium moves it) and two rules go
 * before it: the TUN's own writes to the local table, then "to LADDR ipproto P dport
 * <pool>" to tslb's table. Nothing else changes for the host: local stays ahead of every
 * other rule.
 */
export const PRIO_FULLNAT_EXEMPT = 98;
export const PRIO_FULLNAT = 99;
export const PRIO_LOCAL = 100;
const RT_TABLE_LOCAL = 255;
const RESERVED_PORTS = "net/ipv4/ip_local_reserved_ports";

const EEXIST = 17;
const ENOENT = 2;
const EAFNOSUPPORT = 97;

export interface VipRoute { af: 4 | 6; addr: string }
export interface ReplyRule { af: 4 | 6; rip: string; proto: number; rport: number }

/** Full NAT: replies to local address `laddr` over protocol `proto` in the port pool go to tslb. */
export interface FullNatRule { af: 4 | 6; laddr: string; proto: number }

export interface NetPlan {
  vips: Map<string, VipRoute>;
  replies: Map<string, ReplyRule>;
  fullnat: Map<string, FullNatRule>;
}

const PROTO_NUM: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

/** `localOf`: the address the kernel would use toward a real server (full NAT without --laddr). */
export function planNetwork(rules: RuleSet, localOf: (d: Dest) => string | null = () => null): NetPlan {
  const vips = new Map<string, VipRoute>();
  const replies = new Map<string, ReplyRule>();
  const fullnat = new Map<string, FullNatRule>();
  for (const s of rules.services) {
    // A fwmark service has no VIP of its own: marked packets reach it through its mark's
    // TUN (control/mark_devices.ts), whatever their destination, TCP and UDP alike.
    if (s.key.kind !== "fwm") vips.set(`${s.key.af}|${s.key.addr}`, { af: s.key.af, addr: s.key.addr });
    const protos = s.key.kind === "fwm" ? [6, 17] : [PROTO_NUM[s.key.kind]];
    for (const d of s.dests) {
      for (const laddr of fullNatLocals(s, d, localOf)) {
        for (const proto of protos) fullnat.set(`${d.af}|${laddr}|${proto}`, { af: d.af, laddr, proto });
        // ICMP errors about full-NAT packets are addressed to the local address too. Other
        // ICMP to it (a ping of the host) passes through tslb and back to the kernel. Not
        // ICMPv6: neighbour discovery must reach the host untouched (hop limit 255).
        if (d.af === 4) fullnat.set(`4|${laddr}|1`, { af: 4, laddr, proto: 1 });
      }
      if (d.fwd !== "masq") continue;
      // ICMP errors from the real server (port unreachable, too big ...) come back too,
      // so they can be rewritten for the client.
      const icmp: ReplyRule = { af: d.af, rip: d.addr, proto: d.af === 4 ? 1 : 58, rport: 0 };
      for (const r of [...protos.map((proto): ReplyRule => ({ af: d.af, rip: d.addr, proto, rport: d.port })), icmp]) {
        replies.set(`${r.af}|${r.rip}|${r.proto}|${r.rport}`, r);
      }
    }
  }
  return { vips, replies, fullnat };
}

export interface NetworkOptions {
  tunName: string;
  tunIndex: number;
  /** Interface whose neighbours get proxy-ARP answers for each VIP (--vip-dev), or "". */
  vipDev: string;
  /** Full NAT's local-port pool (inclusive). */
  fullnatPorts: [number, number];
  log: (msg: string) => void;
}

export class NetworkState {
  private vips = new Map<string, VipRoute>();
  private replies = new Map<string, ReplyRule>();
  private fullnat = new Map<string, FullNatRule>();
  /** ip_local_reserved_ports before tslb added its pool (null: not changed). */
  private reservedBefore: string | null = null;
  private localMoved = false;
  private baseInstalled = false;
  private vipDevIndex = 0;

  constructor(private readonly nl: RtNetlink, private readonly opts: NetworkOptions) {}

  /** The reply table's default route and the exemption rule for the TUN's own writes. */
  installBase(): void {
    if (this.opts.vipDev) this.vipDevIndex = this.nl.linkIndex(this.opts.vipDev);
    for (const af of [4, 6] as const) {
      this.ignoreExists(() => this.nl.routeAdd({ af, dst: af === 4 ? "0.0.0.0" : "::", prefixLen: 0, oif: this.opts.tunIndex, table: TSLB_TABLE }));
      this.ignoreExists(() => this.nl.ruleAdd({ af, priority: PRIO_EXEMPT, table: 254, iif: this.opts.tunName }));
    }
    this.baseInstalled = true;
  }

  apply(plan: NetPlan): void {
    for (const [k, v] of this.vips) if (!plan.vips.has(k)) { this.delVip(v); this.vips.delete(k); }
    for (const [k, r] of this.replies) if (!plan.replies.has(k)) { this.delReply(r); this.replies.delete(k); }
    for (const [k, v] of plan.vips) if (!this.vips.has(k)) { this.addVip(v); this.vips.set(k, v); }
    for (const [k, r] of plan.replies) if (!this.replies.has(k)) { this.addReply(r); this.replies.set(k, r); }
    for (const [k, r] of this.fullnat) if (!plan.fullnat.has(k)) { this.nl.ruleDel(this.fullNatRule(r)); this.fullnat.delete(k); }
    if (plan.fullnat.size > 0 && !this.localMoved) this.moveLocal();
    for (const [k, r] of plan.fullnat) if (!this.fullnat.has(k)) { this.ignoreExists(() => this.nl.ruleAdd(this.fullNatRule(r))); this.fullnat.set(k, r); }
    if (plan.fullnat.size === 0 && this.localMoved) this.restoreLocal();
  }

  /** Removes everything this daemon installed; tolerates entries already gone. */
  teardown(): void {
    const quiet = (f: () => void) => { try { f(); } catch (e) { this.opts.log(`teardown: ${(e as Error).message}`); } };
    for (const v of this.vips.values()) quiet(() => this.delVip(v));
    for (const r of this.replies.values()) quiet(() => this.delReply(r));
    for (const r of this.fullnat.values()) quiet(() => this.nl.ruleDel(this.fullNatRule(r)));
    this.vips.clear();
    this.replies.clear();
    this.fullnat.clear();
    if (this.localMoved) quiet(() => this.restoreLocal());
    if (this.baseInstalled) {
      for (const af of [4, 6] as const) {
        quiet(() => this.nl.ruleDel({ af, priority: PRIO_EXEMPT, table: 254, iif: this.opts.tunName }));
        quiet(() => this.nl.routeDel({ af, dst: af === 4 ? "0.0.0.0" : "::", prefixLen: 0, oif: this.opts.tunIndex, table: TSLB_TABLE }));
      }
      this.baseInstalled = false;
    }
  }

  private addVip(v: VipRoute): void {
    this.ignoreExists(() => this.nl.routeAdd({ af: v.af, dst: v.addr, prefixLen: v.af === 4 ? 32 : 128, oif: this.opts.tunIndex }));
    if (this.vipDevIndex) this.ignoreExists(() => this.nl.neighProxyAdd(v.af, v.addr, this.vipDevIndex));
  }
  private delVip(v: VipRoute): void {
    this.nl.routeDel({ af: v.af, dst: v.addr, prefixLen: v.af === 4 ? 32 : 128, oif: this.opts.tunIndex });
    if (this.vipDevIndex) this.nl.neighProxyDel(v.af, v.addr, this.vipDevIndex);
  }
  private replyRule(r: ReplyRule) {
    return {
      af: r.af, priority: PRIO_REPLY, table: TSLB_TABLE, src: r.rip, srcLen: r.af === 4 ? 32 : 128,
      ipproto: r.proto, ...(r.rport !== 0 ? { sport: r.rport } : {}),
    };
  }
  private addReply(r: ReplyRule): void {
    this.ignoreExists(() => this.nl.ruleAdd(this.replyRule(r)));
  }
  private delReply(r: ReplyRule): void {
    this.nl.ruleDel(this.replyRule(r));
  }

  private fullNatRule(r: FullNatRule) {
    const [lo, hi] = this.opts.fullnatPorts;
    const ports = r.proto === 1 ? {} : { dport: lo, dportHi: hi };
    return { af: r.af, priority: PRIO_FULLNAT, table: TSLB_TABLE, dst: r.laddr, ipproto: r.proto, ...ports };
  }

  /**
   * Makes room before the local table for full NAT's reply rules, and reserves the port
   * pool so the host's own connections never take a port whose replies tslb would catch.
   */
  private moveLocal(): void {
    const [lo, hi] = this.opts.fullnatPorts;
    for (const af of [4, 6] as const) {
      this.ignoreExists(() => this.nl.ruleAdd({ af, priority: PRIO_LOCAL, table: RT_TABLE_LOCAL }));
      this.ignoreMissing(() => this.nl.ruleDel({ af, priority: 0, table: RT_TABLE_LOCAL }));
      this.ignoreExists(() => this.nl.ruleAdd({ af, priority: PRIO_FULLNAT_EXEMPT, table: RT_TABLE_LOCAL, iif: this.opts.tunName }));
    }
    this.localMoved = true;
    try {
      const before = sysctlRead(RESERVED_PORTS).trim();
      sysctlWrite(RESERVED_PORTS, before === "" ? `${lo}-${hi}` : `${before},${lo}-${hi}`);
      this.reservedBefore = before;
      this.opts.log(`full NAT: local ports ${lo}-${hi} reserved (net.ipv4.ip_local_reserved_ports), the local-table rule moved to priority ${PRIO_LOCAL}`);
    } catch (e) {
      this.opts.log(`full NAT: cannot reserve local ports ${lo}-${hi}: ${(e as Error).message}`);
    }
  }

  private restoreLocal(): void {
    for (const af of [4, 6] as const) {
      this.ignoreExists(() => this.nl.ruleAdd({ af, priority: 0, table: RT_TABLE_LOCAL }));
      this.ignoreMissing(() => this.nl.ruleDel({ af, priority: PRIO_FULLNAT_EXEMPT, table: RT_TABLE_LOCAL, iif: this.opts.tunName }));
      this.ignoreMissing(() => this.nl.ruleDel({ af, priority: PRIO_LOCAL, table: RT_TABLE_LOCAL }));
    }
    this.localMoved = false;
    if (this.reservedBefore !== null) {
      sysctlWrite(RESERVED_PORTS, this.reservedBefore === "" ? "\n" : this.reservedBefore);
      this.reservedBefore = null;
    }
  }

  private ignoreMissing(f: () => void): void {
    try {
      f();
    } catch (e) {
      if (!(e instanceof SysError && (e.errno === ENOENT || e.errno === EAFNOSUPPORT))) throw e;
    }
  }

  private ignoreExists(f: () => void): void {
    try {
      f();
    } catch (e) {
      if (!(e instanceof SysError && e.errno === EEXIST)) throw e;
    }
  }
}
