// What tslb asks of the kernel's routing, and nothing more (DESIGN §3): the VIP routes
// into the TUN, the policy rules that bring masqueraded real servers' replies back into
// the TUN, and optional proxy-ARP entries for VIPs. Every change goes through rtnetlink
// (no `ip` binary: minimal containers have none) and is undone on delete or shutdown.
// planNetwork() is pure; NetworkState diffs plans against what it installed.
import type { NlChange, RouteSpec, RtNetlink, RuleSpec } from "../io/rtnetlink.ts";
import { SysError } from "../io/libc.ts";
import { sysctlRead, sysctlWrite } from "../io/sysctl.ts";
import { fullNatLocals } from "./compile.ts";
import type { Dest, RuleSet } from "./model.ts";
import { formatIPv4, parseIPv4 } from "../wire/addr.ts";
import { dottedQuad } from "./dotted_quad.ts";

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

/** A VIP: its host route into the TUN, and its proxy-ARP/NDP entry with --vip-dev. */
export interface VipRoute { af: 4 | 6; addr: string }
/** Replies from the real servers in rip/ripLen (one address, or an exact block of them) over `proto` from `rport` (0: any). */
export interface ReplyRule { af: 4 | 6; rip: string; ripLen: number; proto: number; rport: number }

/** Full NAT: replies to local address `laddr` over protocol `proto` in the port pool go to tslb. */
export interface FullNatRule { af: 4 | 6; laddr: string; proto: number }

export interface NetPlan {
  vips: Map<string, VipRoute>;
  replies: Map<string, ReplyRule>;
  fullnat: Map<string, FullNatRule>;
}

const PROTO_NUM: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

/**
 * `localOf`: the address the kernel would use toward a real server (full NAT without --laddr).
 *
 * Reply rules cover the masqueraded real servers of each (protocol, port) with the fewest
 * prefixes that hold exactly those addresses: 198.18.1.12 and .13 with the same port are
 * one rule "from 198.18.1.12/31". The kernel keeps policy rules in a list and walks it on
 * every insert, so 5 000 rules (2 500 servers) took it a second of CPU; the same servers
 * in a few runs of consecutive addresses are a few dozen rules. Matching is unchanged:
 * the rules share one priority and one table, and no address outside the servers is
 * covered. IPv6 servers get a rule each. VIP routes stay one per VIP (a block route would
 * lose to a more specific route of the host's, or collide with a connected subnet).
 */
export function planNetwork(rules: RuleSet, localOf: (d: Dest) => string | null = () => null): NetPlan {
  const vips = new Map<string, VipRoute>();
  const fullnat = new Map<string, FullNatRule>();
  /** (af, proto, rport) as one number -> the real servers' addresses (IPv4 as unsigned numbers: cheaper set members than text). */
  const groups = new Map<number, Set<string | number>>();
  const group = (af: number, proto: number, rport: number, rip: string | number) => {
    const k = (af * 256 + proto) * 65536 + rport;
    let g = groups.get(k);
    if (g === undefined) groups.set(k, (g = new Set()));
    g.add(rip);
  };
  for (const s of rules.services) {
    // A fwmark service has no VIP of its own: marked packets reach it through its mark's
    // TUN (control/mark_devices.ts), whatever their destination, TCP and UDP alike.
    if (s.key.kind !== "fwm") vips.set(`${s.key.af}|${s.key.addr}`, { af: s.key.af, addr: s.key.addr });
    const protos = s.key.kind === "fwm" ? FWM_PROTOS : [PROTO_NUM[s.key.kind]];
    for (const d of s.dests) {
      if (d.fwd === "fullnat") {
        for (const laddr of fullNatLocals(s, d, localOf)) {
          for (const proto of protos) fullnat.set(`${d.af}|${laddr}|${proto}`, { af: d.af, laddr, proto });
          // ICMP errors about full-NAT packets are addressed to the local address too. Other
          // ICMP to it (a ping of the host) passes through tslb and back to the kernel. Not
          // ICMPv6: neighbour discovery must reach the host untouched (hop limit 255).
          if (d.af === 4) fullnat.set(`4|${laddr}|1`, { af: 4, laddr, proto: 1 });
        }
      }
      if (d.fwd !== "masq") continue;
      const rip = d.af === 4 ? (dottedQuad(d.addr) ?? parseIPv4(d.addr)!) >>> 0 : d.addr;
      for (const proto of protos) group(d.af, proto, d.port, rip);
    }
  }
  // ICMP errors from the real servers (port unreachable, too big ...) come back too, so
  // they can be rewritten for the client: one group per family, every masqueraded server.
  for (const [k, rips] of [...groups]) {
    const af = Math.floor(k / (256 * 65536));
    for (const rip of rips) group(af, af === 4 ? 1 : 58, 0, rip);
  }
  const replies = new Map<string, ReplyRule>();
  for (const [k, rips] of groups) {
    const af = Math.floor(k / (256 * 65536)) as 4 | 6, proto = Math.floor(k / 65536) % 256, rport = k % 65536;
    for (const b of blocks(af, rips)) replies.set(`${af}|${b.addr}/${b.len}|${proto}|${rport}`, { af, rip: b.addr, ripLen: b.len, proto, rport });
  }
  return { vips, replies, fullnat };
}

/** Addresses of one family as prefixes: IPv4 (unsigned numbers) by coverV4, IPv6 (text) one each. */
function blocks(af: 4 | 6, addrs: Iterable<string | number>): { addr: string; len: number }[] {
  if (af === 6) return [...addrs].map((addr) => ({ addr: addr as string, len: 128 }));
  return coverV4([...addrs] as number[]).map((b) => ({ addr: formatIPv4(b.addr), len: b.len }));
}

const FWM_PROTOS: readonly number[] = [6, 17];

/**
 * The fewest prefixes covering exactly `addrs` (IPv4 as unsigned numbers): each run of
 * consecutive addresses split into the largest aligned power-of-two blocks.
 */
export function coverV4(addrs: readonly number[]): { addr: number; len: number }[] {
  const a = Float64Array.from(new Set(addrs)).sort();
  const out: { addr: number; len: number }[] = [];
  for (let i = 0; i < a.length;) {
    let j = i;
    while (j + 1 < a.length && a[j + 1] === a[j] + 1) j++;
    for (let lo = a[i]; lo <= a[j];) {
      let size = 1, len = 32;
      while (len > 0 && lo % (size * 2) === 0 && lo + size * 2 - 1 <= a[j]) { size *= 2; len--; }
      out.push({ addr: lo, len });
      lo += size;
    }
    i = j + 1;
  }
  return out;
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

  /**
   * Makes the installed routes and rules those of `plan`. VIP routes (and proxy
   * neighbours) and reply rules go to the kernel in batches (RtNetlink.batch), additions
   * first: a reply block that grows (.12/32 becoming .12/31) is never missing for a moment. On a failure
   * everything that did succeed is recorded, then the first error is thrown; applying the
   * previous plan undoes the rest.
   */
  apply(plan: NetPlan): void {
    // Each change, and what it installs once it succeeded (no closure per change: a
    // restore makes 10 000 of them).
    const adds: NlChange[] = [];
    const addKeys: string[] = [];
    const addWhat: (VipRoute | ReplyRule | null)[] = [];
    for (const [k, v] of plan.vips) {
      if (this.vips.has(k)) continue;
      adds.push({ op: "routeAdd", route: this.vipRoute(v) });
      addKeys.push(k);
      addWhat.push(v);
      if (this.vipDevIndex) {
        adds.push({ op: "neighProxyAdd", af: v.af, addr: v.addr, ifindex: this.vipDevIndex });
        addKeys.push(k);
        addWhat.push(null); // recorded with its route
      }
    }
    const firstReply = adds.length;
    for (const [k, r] of plan.replies) {
      if (this.replies.has(k)) continue;
      adds.push({ op: "ruleAdd", rule: this.replyRule(r) });
      addKeys.push(k);
      addWhat.push(r);
    }
    let failed: Error | null = null;
    const results = this.nl.batch(adds);
    for (let i = 0; i < results.length; i++) {
      const res = results[i];
      if (res.code !== 0 && res.code !== -EEXIST) {
        failed ??= res.error;
        continue;
      }
      const what = addWhat[i];
      if (what === null) continue;
      if (i < firstReply) this.vips.set(addKeys[i], what as VipRoute);
      else this.replies.set(addKeys[i], what as ReplyRule);
    }
    if (failed) throw failed;
    const dels: NlChange[] = [];
    for (const [k, v] of this.vips) {
      if (plan.vips.has(k)) continue;
      dels.push({ op: "routeDel", route: this.vipRoute(v) });
      if (this.vipDevIndex) dels.push({ op: "neighProxyDel", af: v.af, addr: v.addr, ifindex: this.vipDevIndex });
      this.vips.delete(k);
    }
    for (const [k, r] of this.replies) {
      if (plan.replies.has(k)) continue;
      dels.push({ op: "ruleDel", rule: this.replyRule(r) });
      this.replies.delete(k);
    }
    this.nl.batch(dels); // a delete never fails the change (as routeDel/ruleDel): gone is gone
    for (const [k, r] of this.fullnat) if (!plan.fullnat.has(k)) { this.nl.ruleDel(this.fullNatRule(r)); this.fullnat.delete(k); }
    if (plan.fullnat.size > 0 && !this.localMoved) this.moveLocal();
    for (const [k, r] of plan.fullnat) if (!this.fullnat.has(k)) { this.ignoreExists(() => this.nl.ruleAdd(this.fullNatRule(r))); this.fullnat.set(k, r); }
    if (plan.fullnat.size === 0 && this.localMoved) this.restoreLocal();
  }

  /** Removes everything this daemon installed; tolerates entries already gone. */
  teardown(): void {
    const quiet = (f: () => void) => { try { f(); } catch (e) { this.opts.log(`teardown: ${(e as Error).message}`); } };
    const dels: NlChange[] = [];
    for (const v of this.vips.values()) {
      dels.push({ op: "routeDel", route: this.vipRoute(v) });
      if (this.vipDevIndex) dels.push({ op: "neighProxyDel", af: v.af, addr: v.addr, ifindex: this.vipDevIndex });
    }
    for (const r of this.replies.values()) dels.push({ op: "ruleDel", rule: this.replyRule(r) });
    quiet(() => void this.nl.batch(dels));
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

  private vipRoute(v: VipRoute): RouteSpec {
    return { af: v.af, dst: v.addr, prefixLen: v.af === 4 ? 32 : 128, oif: this.opts.tunIndex };
  }
  private replyRule(r: ReplyRule): RuleSpec {
    return {
      af: r.af, priority: PRIO_REPLY, table: TSLB_TABLE, src: r.rip, srcLen: r.ripLen,
      ipproto: r.proto, ...(r.rport !== 0 ? { sport: r.rport } : {}),
    };
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
