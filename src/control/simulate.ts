// tslb --simulate: what would the schedulers do with these rules? Runs each service's
// real scheduler (the data plane's own code) over a set of flows — synthetic, or the
// distinct flows of a pcap — as if they were all open at once, prints each destination's
// share, and, for a proposed change (--remove / --add a destination), how many flows
// would land on a different server. Nothing is sent; no daemon is needed.
import { DS_ACTIVE, DS_INACTIVE, DS_STRIDE, allocDestState } from "../conntrack/dest_state.ts";
import { ActiveConfig } from "../dataplane/snapshot.ts";
import { NO_DEST } from "../sched/scheduler.ts";
import { MAX_DEST } from "../stats/counters.ts";
import { formatIPv4, formatIPv6 } from "../wire/addr.ts";
import { Pkt } from "../wire/pkt.ts";
import { addrWords, compile } from "./compile.ts";
import { RuleIds } from "./ids.ts";
import type { Dest, RuleSet, Service } from "./model.ts";
import { DEFAULT_SYSCTLS } from "./options.ts";

/** A flow as the scheduler sees it: client address words and port, the VIP port. */
export interface SimFlow {
  af: 4 | 6;
  src: number[];
  sport: number;
  dport: number;
}

export interface DestShare {
  dest: string;
  weight: number;
  flows: number;
}

export interface ServiceSim {
  service: string;
  sched: string;
  flows: number;
  before: DestShare[];
  after?: DestShare[];
  /** Flows whose server differs after the change (only with a change). */
  moved?: number;
  /** Flows no server would take (all quiesced, overloaded, or none). */
  unscheduled: number;
}

/** Deterministic synthetic clients (mulberry32): addresses in 198.18.0.0/15 or 2001:2::/48, ephemeral ports. */
export function syntheticFlows(n: number, af: 4 | 6, seed = 1): SimFlow[] {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
  return Array.from({ length: n }, () => ({
    af,
    src: af === 4 ? [(0xc6120000 | (rnd() & 0x1ffff)) | 0, 0, 0, 0] : [0x20010002, 0, rnd() | 0, rnd() | 0],
    sport: 32768 + (rnd() % 28232),
    dport: 0,
  }));
}

const PROTO: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, fwm: 6 };

function destName(d: Dest): string {
  return d.af === 6 ? `[${d.addr}]:${d.port}` : `${d.addr}:${d.port}`;
}

export function serviceName(s: Service): string {
  if (s.key.kind === "fwm") return `FWM  ${s.key.fwmark}${s.key.af === 6 ? " IPv6" : ""}`;
  const a = s.key.af === 6 ? `[${s.key.addr}]` : s.key.addr;
  return `${s.key.kind.toUpperCase().padEnd(4)} ${a}:${s.key.port}`;
}

/** Schedules every flow of every service once; returns the chosen "addr:port" per flow, per service. */
function assign(rules: RuleSet, flows: (s: Service) => SimFlow[]): Map<string, (string | null)[]> {
  const ids = new RuleIds(() => false);
  ids.sync(rules, () => {});
  const snap = compile(rules, ids, 1, { sysctl: DEFAULT_SYSCTLS });
  const state = new Int32Array(allocDestState(MAX_DEST));
  const cfg = new ActiveConfig(snap, state, null);
  const out = new Map<string, (string | null)[]>();
  const p = new Pkt();
  rules.services.forEach((svc, s) => {
    const ds = cfg.dests[s];
    const picks: (string | null)[] = [];
    const vip = addrWords(svc.key.af, svc.key.addr);
    for (const f of flows(svc)) {
      p.ipv = f.af;
      p.proto = PROTO[svc.key.kind];
      [p.src0, p.src1, p.src2, p.src3] = f.src;
      [p.dst0, p.dst1, p.dst2, p.dst3] = vip;
      p.sport = f.sport;
      p.dport = svc.key.port || f.dport;
      p.mark = svc.key.fwmark | 0;
      const di = cfg.scheds[s].schedule(ds, p);
      if (di === NO_DEST) { picks.push(null); continue; }
      // Every flow stays open: least-connection schedulers see the load build up.
      const b = ds.id[di] * DS_STRIDE;
      state[b + (p.proto === 6 ? DS_ACTIVE : DS_INACTIVE)]++;
      picks.push(destName(svc.dests[di]));
    }
    out.set(serviceName(svc), picks);
  });
  return out;
}

function shares(svc: Service, picks: (string | null)[]): DestShare[] {
  return svc.dests.map((d) => ({ dest: destName(d), weight: d.weight, flows: picks.filter((x) => x === destName(d)).length }));
}

/**
 * Simulates `rules`, and `changed` (the same rules after a proposed change) when given.
 * `flowsFor` supplies each service's flows (synthetic or from a capture).
 */
export function simulate(rules: RuleSet, flowsFor: (s: Service) => SimFlow[], changed?: RuleSet): ServiceSim[] {
  const before = assign(rules, flowsFor);
  const after = changed ? assign(changed, flowsFor) : undefined;
  return rules.services.map((svc) => {
    const name = serviceName(svc);
    const b = before.get(name)!;
    const sim: ServiceSim = { service: name, sched: svc.sched, flows: b.length, before: shares(svc, b), unscheduled: b.filter((x) => x === null).length };
    const a = after?.get(name);
    const svc2 = changed?.services.find((x) => serviceName(x) === name);
    if (a && svc2) {
      sim.after = shares(svc2, a);
      sim.moved = a.filter((x, i) => x !== b[i]).length;
    }
    return sim;
  });
}

export function formatSimulation(sims: ServiceSim[], change: string): string {
  const pct = (n: number, of: number) => (of === 0 ? "0.0" : ((100 * n) / of).toFixed(1)).padStart(5);
  const lines: string[] = [];
  const table = (rows: DestShare[], flows: number) => {
    for (const r of rows) lines.push(`  -> ${r.dest.padEnd(28)} weight ${String(r.weight).padEnd(6)} ${String(r.flows).padStart(8)} flows ${pct(r.flows, flows)} %`);
  };
  for (const s of sims) {
    lines.push(`${s.service} ${s.sched}  (${s.flows} flows${s.unscheduled ? `, ${s.unscheduled} unscheduled` : ""})`);
    table(s.before, s.flows);
    if (s.after) {
      lines.push(`  after ${change}:`);
      table(s.after, s.flows);
      lines.push(`  moved: ${s.moved} of ${s.flows} flows (${pct(s.moved!, s.flows).trim()} %)`);
    }
  }
  return lines.join("\n") + "\n";
}

/** Distinct client flows (src, sport) of IPv4/IPv6 TCP/UDP packets in a pcap (Ethernet, raw IP, Linux cooked v1/v2). */
export function pcapFlows(buf: Uint8Array): SimFlow[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 24) throw new Error("not a pcap file (too short)");
  const magic = dv.getUint32(0, true);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && dv.getUint32(0, false) !== 0xa1b2c3d4 && dv.getUint32(0, false) !== 0xa1b23c4d) throw new Error("not a pcap file (bad magic)");
  const link = dv.getUint32(20, le);
  const l2 = link === 1 ? 14 : link === 101 || link === 12 ? 0 : link === 113 ? 16 : link === 276 ? 20 : -1;
  if (l2 < 0) throw new Error(`pcap link type ${link} is not supported (Ethernet, raw IP, Linux cooked only)`);
  const seen = new Set<string>();
  const flows: SimFlow[] = [];
  for (let o = 24; o + 16 <= buf.length;) {
    const cap = dv.getUint32(o + 8, le);
    const at = o + 16 + l2;
    o += 16 + cap;
    if (o > buf.length || cap < l2 + 20) continue;
    const v = buf[at] >> 4;
    let proto: number, l4: number, src: number[];
    if (v === 4) {
      proto = buf[at + 9]; l4 = at + ((buf[at] & 15) << 2); src = [dv.getInt32(at + 12), 0, 0, 0];
    } else if (v === 6 && cap >= l2 + 40) {
      proto = buf[at + 6]; l4 = at + 40; src = [0, 1, 2, 3].map((w) => dv.getInt32(at + 8 + w * 4));
    } else continue;
    if ((proto !== 6 && proto !== 17) || l4 + 4 > o) continue;
    const sport = dv.getUint16(l4);
    const key = `${src.join(",")}/${sport}`;
    if (seen.has(key)) continue;
    seen.add(key);
    flows.push({ af: v === 4 ? 4 : 6, src, sport, dport: dv.getUint16(l4 + 2) });
  }
  return flows;
}

export function flowText(f: SimFlow): string {
  return `${f.af === 4 ? formatIPv4(f.src[0]) : formatIPv6(f.src)}:${f.sport}`;
}
