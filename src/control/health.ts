// The daemon's side of health checking: turns the rules' --check settings into watches
// for the monitor (health/monitor.ts), tells the daemon which destinations are down
// (compiled unavailable: no new connections, weight and rules unchanged), shows each
// check's state, and installs the policy routes that --check-via-vip probes need.
//
// --check-via-vip (direct routing): the probe must travel as the traffic does, to the
// VIP but to the real server's MAC, so that a server without the VIP on lo fails it. The
// probe socket binds a port of its own (PROBE_PORT_BASE + slot), and a policy rule that
// matches only locally sent packets from that port to the VIP (`iif lo`, ipproto,
// sport, to VIP) looks up a table of its own whose one route is `VIP via RIP`: the
// kernel then sends the probe to the RIP's MAC with the VIP as destination, exactly as
// tslb's DR path does. The answer comes from VIP:port straight back to the balancer's
// address (with reverse-path filtering strict on that interface it would be dropped: use
// 0 or 2 there, as for any DR director that talks to its real servers).
import type { HealthView } from "./protocol.ts";
import { SysError } from "../io/libc.ts";
import type { RtNetlink } from "../io/rtnetlink.ts";
import type { CheckTarget } from "../health/checker.ts";
import { hostPort } from "../health/checker.ts";
import { CHECKERS } from "../health/index.ts";
import { Monitor, type Transition, type WatchSpec, isAvailable } from "../health/monitor.ts";
import { RuleIds } from "./ids.ts";
import type { Logger } from "./log.ts";
import { type Dest, type RuleSet, type Service, serviceKeyText } from "./model.ts";

/** Local ports of via-VIP probes (below the kernel's ephemeral range) and their routing tables. */
export const PROBE_PORT_BASE = 29100;
export const PROBE_TABLE_BASE = 0x7500;
export const MAX_PROBE_SLOTS = 900;
/** Before the TUN exemption (29000) and the main table. */
export const PRIO_PROBE = 28990;
const EEXIST = 17;

/** "198.18.1.11:8080 of TCP 198.18.0.100:80": a destination in log lines. */
export function destLabel(s: Service, d: Dest): string {
  const k = s.key;
  const svc = k.kind === "fwm" ? `FWM ${k.fwmark}` : `${k.kind.toUpperCase()} ${hostPort({ af: k.af, addr: k.addr, port: k.port })}`;
  return `${hostPort(d)} of ${svc}`;
}

/** One via-VIP probe path: its slot gives the local port and the table. */
interface ProbeRoute { af: 4 | 6; vip: string; rip: string; proto: number; slot: number }
/** A via-VIP probe of a tunnel destination: the data plane pins its source port to that destination. */
export interface ProbePin { sport: number; key: string }

/** The rules' checks as monitor watches; `slotOf` gives a via-VIP destination its probe slot (0 = none free). */
export function watchSpecs(rules: RuleSet, slotOf: (key: string) => number): WatchSpec[] {
  const out: WatchSpec[] = [];
  for (const s of rules.services) {
    for (const d of s.dests) {
      const c = d.check;
      if (!c || c.kind === "none") continue;
      const key = RuleIds.destKey(serviceKeyText(s.key), d);
      const slot = c.viaVip && (d.fwd === "route" || d.fwd === "tunnel") && s.key.kind !== "fwm" ? slotOf(key) : 0;
      const target: CheckTarget = slot > 0
        ? { af: s.key.af, addr: s.key.addr, port: c.port || s.key.port || d.port, path: c.path, status: c.status, localPort: PROBE_PORT_BASE + slot }
        : { af: d.af, addr: d.addr, port: c.port || d.port, path: c.path, status: c.status, localPort: 0 };
      out.push({
        key, label: destLabel(s, d), target,
        settings: { kind: c.kind, intervalMs: c.intervalMs, timeoutMs: c.timeoutMs, rise: c.rise, fall: c.fall },
      });
    }
  }
  return out;
}

export class HealthControl {
  private readonly monitor: Monitor;
  private readonly slots = new Map<string, number>();
  private readonly routes = new Map<number, ProbeRoute>();

  /**
   * `onTransitions` runs after the log lines of a batch of transitions, when at least one
   * changed a destination's availability (the daemon recompiles then).
   */
  constructor(private readonly nl: RtNetlink | null, private readonly log: Logger, onAvailability: () => void) {
    this.monitor = new Monitor(CHECKERS, {
      notify: (ts: Transition[]) => {
        for (const t of ts) {
          const r = t.result;
          this.log.event("health", `${t.label}: ${t.from} -> ${t.to} (${r.ok ? "ok" : "failed"}: ${r.detail}, ${r.ms} ms)`,
            { dest: t.label, from: t.from, to: t.to, ok: r.ok, detail: r.detail, ms: r.ms });
        }
        if (ts.some((t) => t.availabilityChanged)) onAvailability();
      },
    });
  }

  /** Tunnel destinations with --check-via-vip: their probes need no route, only a pin. */
  private readonly tunnelVia = new Set<string>();

  /**
   * Gives every --check-via-vip destination of `rules` its probe slot (local port) and
   * returns the pins the data plane needs for tunnel destinations: a probe to the VIP from
   * that port goes to that destination. Call before compiling `rules`; sync() keeps them.
   */
  assign(rules: RuleSet): ProbePin[] {
    const via = this.viaOf(rules);
    this.tunnelVia.clear();
    for (const [k, v] of via) if (v.tunnel) this.tunnelVia.add(k);
    for (const k of [...this.slots.keys()]) if (!via.has(k)) this.slots.delete(k);
    const used = new Set(this.slots.values());
    let next = 1;
    for (const k of via.keys()) {
      if (this.slots.has(k)) continue;
      while (used.has(next)) next++;
      if (next > MAX_PROBE_SLOTS) { this.log.event("error", `no probe slot left for --check-via-vip of ${k}: probing the real server directly`); break; }
      this.slots.set(k, next);
      used.add(next);
    }
    return [...this.tunnelVia].filter((k) => this.slots.has(k)).map((key) => ({ sport: PROBE_PORT_BASE + this.slots.get(key)!, key }));
  }

  /** viaOf()'s last answer: compiling and syncing ask about the same rules up to three times. */
  private viaCache: { rules: RuleSet; via: Map<string, Omit<ProbeRoute, "slot"> & { tunnel: boolean }> } | null = null;

  /** The via-VIP destinations of `rules`: DR ones need a policy route, tunnel ones a pin. */
  private viaOf(rules: RuleSet): Map<string, Omit<ProbeRoute, "slot"> & { tunnel: boolean }> {
    if (this.viaCache?.rules === rules) return this.viaCache.via;
    const via = new Map<string, Omit<ProbeRoute, "slot"> & { tunnel: boolean }>();
    for (const s of rules.services) {
      for (const d of s.dests) {
        const c = d.check;
        if (!c || !c.viaVip || (d.fwd !== "route" && d.fwd !== "tunnel") || s.key.kind === "fwm") continue;
        via.set(RuleIds.destKey(serviceKeyText(s.key), d), { af: s.key.af, vip: s.key.addr, rip: d.addr, proto: c.kind === "udp" ? 17 : 6, tunnel: d.fwd === "tunnel" });
      }
    }
    this.viaCache = { rules, via };
    return via;
  }

  /** Watches exactly the checks in `rules` (after every rule change). */
  sync(rules: RuleSet): void {
    this.assign(rules);
    const via = this.viaOf(rules);
    const want = new Map<number, ProbeRoute>();
    for (const [k, slot] of this.slots) {
      const v = via.get(k)!;
      if (!v.tunnel) want.set(slot, { af: v.af, vip: v.vip, rip: v.rip, proto: v.proto, slot });
    }
    this.syncRoutes(want);
    // A DR via-VIP check whose route could not be installed probes the real server directly.
    this.monitor.sync(watchSpecs(rules, (k) => {
      const slot = this.slots.get(k) ?? 0;
      return this.routes.has(slot) || this.tunnelVia.has(k) ? slot : 0;
    }));
  }

  /** Destination keys (RuleIds.destKey) whose check says down. */
  down(): Set<string> {
    return this.monitor.down();
  }

  view(key: string): HealthView | undefined {
    const s = this.monitor.status(key);
    if (!s) return undefined;
    return {
      check: s.kind, state: s.state, available: isAvailable(s.state), last: s.last ? { ...s.last } : null,
      lastCheckMs: s.lastCheckMs, changedMs: s.changedMs, transitions: s.transitions,
    };
  }

  stop(): void {
    this.monitor.stop();
    this.syncRoutes(new Map());
  }

  private routeSpec(r: ProbeRoute) {
    return { af: r.af, dst: r.vip, prefixLen: r.af === 4 ? 32 : 128, gateway: r.rip, table: PROBE_TABLE_BASE + r.slot };
  }
  private ruleSpec(r: ProbeRoute) {
    return {
      af: r.af, priority: PRIO_PROBE, table: PROBE_TABLE_BASE + r.slot, iif: "lo", ipproto: r.proto,
      sport: PROBE_PORT_BASE + r.slot, dst: r.vip, dstLen: r.af === 4 ? 32 : 128,
    };
  }

  private syncRoutes(want: Map<number, ProbeRoute>): void {
    const nl = this.nl;
    if (!nl) return;
    const same = (a: ProbeRoute, b: ProbeRoute) => a.af === b.af && a.vip === b.vip && a.rip === b.rip && a.proto === b.proto;
    for (const [slot, r] of this.routes) {
      const w = want.get(slot);
      if (w && same(w, r)) continue;
      this.quiet(() => nl.ruleDel(this.ruleSpec(r)));
      this.quiet(() => nl.routeDel(this.routeSpec(r)));
      this.routes.delete(slot);
    }
    for (const [slot, r] of want) {
      if (this.routes.has(slot)) continue;
      try {
        this.ignoreExists(() => nl.routeAdd(this.routeSpec(r)));
        this.ignoreExists(() => nl.ruleAdd(this.ruleSpec(r)));
        this.routes.set(slot, r);
      } catch (e) {
        // The probe then goes the normal way to the VIP and fails or passes on its own;
        // the log says why the path is missing.
        this.log.event("error", `--check-via-vip: cannot route probes for ${r.vip} via ${r.rip}: ${(e as Error).message}`);
        this.quiet(() => nl.routeDel(this.routeSpec(r)));
      }
    }
  }

  private quiet(f: () => unknown): void {
    try { f(); } catch (e) { this.log(`health routes: ${(e as Error).message}`); }
  }
  private ignoreExists(f: () => void): void {
    try { f(); } catch (e) { if (!(e instanceof SysError && e.errno === EEXIST)) throw e; }
  }
}
