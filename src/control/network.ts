// What tslb asks of the kernel's routing, and nothing more (DESIGN §3): the VIP routes
// into the TUN, the policy rules that bring masqueraded real servers' replies back into
// the TUN, and optional proxy-ARP entries for VIPs. Every change goes through rtnetlink
// (no `ip` binary: minimal containers have none) and is undone on delete or shutdown.
// planNetwork() is pure; NetworkState diffs plans against what it installed.
import type { RtNetlink } from "../io/rtnetlink.ts";
import { SysError } from "../io/libc.ts";
import type { RuleSet } from "./model.ts";

/** Routing table that holds "default dev <tun>" for reply traffic; "ts" in ASCII. */
export const TSLB_TABLE = 0x7473;
/** Rule priorities: the TUN's own writes are exempt first, then the reply rules. Both before main (32766). */
export const PRIO_EXEMPT = 29000;
export const PRIO_REPLY = 29001;

const EEXIST = 17;

export interface VipRoute { af: 4 | 6; addr: string }
export interface ReplyRule { af: 4 | 6; rip: string; proto: number; rport: number }

export interface NetPlan {
  vips: Map<string, VipRoute>;
  replies: Map<string, ReplyRule>;
}

const PROTO_NUM: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

export function planNetwork(rules: RuleSet): NetPlan {
  const vips = new Map<string, VipRoute>();
  const replies = new Map<string, ReplyRule>();
  for (const s of rules.services) {
    // A fwmark service has no VIP of its own: marked packets reach it through its mark's
    // TUN (control/mark_devices.ts), whatever their destination, TCP and UDP alike.
    if (s.key.kind !== "fwm") vips.set(`${s.key.af}|${s.key.addr}`, { af: s.key.af, addr: s.key.addr });
    const protos = s.key.kind === "fwm" ? [6, 17] : [PROTO_NUM[s.key.kind]];
    for (const d of s.dests) {
      if (d.fwd !== "masq") continue;
      // ICMP errors from the real server (port unreachable, too big ...) come back too,
      // so they can be rewritten for the client.
      const icmp: ReplyRule = { af: d.af, rip: d.addr, proto: d.af === 4 ? 1 : 58, rport: 0 };
      for (const r of [...protos.map((proto): ReplyRule => ({ af: d.af, rip: d.addr, proto, rport: d.port })), icmp]) {
        replies.set(`${r.af}|${r.rip}|${r.proto}|${r.rport}`, r);
      }
    }
  }
  return { vips, replies };
}

export interface NetworkOptions {
  tunName: string;
  tunIndex: number;
  /** Interface whose neighbours get proxy-ARP answers for each VIP (--vip-dev), or "". */
  vipDev: string;
  log: (msg: string) => void;
}

export class NetworkState {
  private vips = new Map<string, VipRoute>();
  private replies = new Map<string, ReplyRule>();
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
  }

  /** Removes everything this daemon installed; tolerates entries already gone. */
  teardown(): void {
    const quiet = (f: () => void) => { try { f(); } catch (e) { this.opts.log(`teardown: ${(e as Error).message}`); } };
    for (const v of this.vips.values()) quiet(() => this.delVip(v));
    for (const r of this.replies.values()) quiet(() => this.delReply(r));
    this.vips.clear();
    this.replies.clear();
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

  private ignoreExists(f: () => void): void {
    try {
      f();
    } catch (e) {
      if (!(e instanceof SysError && e.errno === EEXIST)) throw e;
    }
  }
}
