// RuleSet → Snapshot: the only place where rule text becomes numbers for the data plane.
import { DEFAULT_STATE_TIMEOUTS, S_ESTABLISHED, S_FIN_WAIT, S_UDP } from "../conntrack/tcp_state.ts";
import { type DataplaneSysctls, ServicePacker, type Snapshot } from "../dataplane/snapshot.ts";
import { FWD_FULLNAT, FWD_MASQ, FWD_ROUTE, FWD_TUNNEL } from "../forward/fwd.ts";
import { parseIPv4, parseIPv6 } from "../wire/addr.ts";
import { dottedQuad } from "./dotted_quad.ts";
import type { ServiceSpec } from "./model.ts";
import type { Af, Dest, Fwd, RuleSet, Timeouts, TunCsum, TunType } from "./model.ts";
import { TUN_F_CSUM, TUN_F_REMCSUM, TUN_GRE, TUN_GUE, TUN_IPIP, type TunnelDest, tunnelDest, tunnelInnerMtu } from "../forward/tunnel.ts";
import { RuleIds } from "./ids.ts";
import { serviceKeyText } from "./model.ts";

const PROTO: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, fwm: 0 };
const FWD: Record<Fwd, number> = { masq: FWD_MASQ, route: FWD_ROUTE, tunnel: FWD_TUNNEL, fullnat: FWD_FULLNAT };

/** Four int32 words of an address in canonical text (IPv4 in word 0). */
export function addrWords(af: Af, text: string): number[] {
  if (text === "") return [0, 0, 0, 0];
  if (af === 4) {
    const v = dottedQuad(text) ?? parseIPv4(text);
    if (v === null) throw new Error(`compile: bad IPv4 address ${text}`);
    return [v, 0, 0, 0];
  }
  const w = parseIPv6(text);
  if (w === null) throw new Error(`compile: bad IPv6 address ${text}`);
  return w;
}

/** IPVS per-state timeouts with the three that --set controls applied. */
export function stateTimeouts(t: Timeouts): number[] {
  const out = [...DEFAULT_STATE_TIMEOUTS];
  out[S_ESTABLISHED] = t.tcp;
  out[S_FIN_WAIT] = t.tcpfin;
  out[S_UDP] = t.udp;
  return out;
}

/** The persistence netmask as address words: IPv4 dotted mask, IPv6 prefix length. All ones when not persistent. */
export function maskWords(s: ServiceSpec): number[] {
  if (!s.persistent) return [-1, -1, -1, -1];
  if (s.key.af === 4) return [parseIPv4(s.netmask) ?? -1, -1, -1, -1];
  const len = Number(s.netmask);
  return [0, 1, 2, 3].map((w) => {
    const bits = Math.max(0, Math.min(32, len - w * 32));
    return bits === 0 ? 0 : bits === 32 ? -1 : (~0 << (32 - bits)) | 0;
  });
}

/** How the kernel reaches a tunnel destination: the source address it would use, the route MTU. */
export interface TunnelRoute {
  src: string;
  mtu: number;
}

const TUN_TYPE: Record<TunType, number> = { ipip: TUN_IPIP, gue: TUN_GUE, gre: TUN_GRE };
const TUN_FLAGS: Record<TunCsum, number> = { nocsum: 0, csum: TUN_F_CSUM, remcsum: TUN_F_REMCSUM };

/** The outer header of a -i destination, when the kernel has a route (and a source) toward it. */
function tunnelFields(d: Dest, tunnelOf: (d: Dest) => TunnelRoute | null): { tun: TunnelDest | null; innerMtu: number } {
  if (d.fwd !== "tunnel") return { tun: null, innerMtu: 0 };
  const r = tunnelOf(d);
  if (!r) return { tun: null, innerMtu: -1 };
  const words = (text: string) => addrWords(d.af, text).slice(0, d.af === 4 ? 1 : 4);
  const tun = tunnelDest(d.af, TUN_TYPE[d.tunType], TUN_FLAGS[d.tunCsum], d.tunPort, words(r.src), words(d.addr));
  return { tun, innerMtu: tunnelInnerMtu(r.mtu, tun) };
}

/**
 * `down`: destinations (RuleIds.destKey) whose health check failed: compiled unavailable,
 * with their weight and everything else unchanged.
 */
/** What the daemon knows beyond the rules when it compiles them. */
export interface CompileContext {
  sysctl: DataplaneSysctls;
  /** One TUN per firewall mark in use. */
  markDevs?: Snapshot["markDevs"];
  /** Destinations (RuleIds.destKey) whose health check failed: compiled unavailable. */
  down?: ReadonlySet<string>;
  /** How the kernel reaches each tunnel destination (null: no route). */
  tunnelOf?: (d: Dest) => TunnelRoute | null;
  /** --check-via-vip probes of tunnel destinations: source port → destination key. */
  pins?: readonly { sport: number; key: string }[];
  /** Full NAT without --laddr: the source address the kernel would use toward a real server (null: no route). */
  localOf?: (d: Dest) => string | null;
  /** Full NAT's local-port pool. */
  fullnatPorts?: [number, number];
}

/**
 * The local addresses a full-NAT destination's connections come from: the service's
 * --laddr addresses of the destination's family, else the one the kernel would use
 * toward it. Shared by compile() (the data plane's words) and planNetwork() (the rules
 * that bring replies back).
 */
export function fullNatLocals(s: ServiceSpec, d: Dest, localOf: (d: Dest) => string | null): string[] {
  if (d.fwd !== "fullnat") return [];
  const mine = s.laddrs.filter((a) => a.includes(":") === (d.af === 6));
  if (s.laddrs.length > 0) return mine;
  const src = localOf(d);
  return src === null ? [] : [src];
}

/**
 * The rules as the data plane's Snapshot, services in the packed form. `ids` must have
 * been synced to `rules` (RuleIds.sync): their ids are read in rule order.
 */
export function compile(rules: RuleSet, ids: RuleIds, gen: number, ctx: CompileContext): Snapshot {
  const down = ctx.down ?? new Set<string>();
  const tunnelOf = ctx.tunnelOf ?? (() => null);
  const localOf = ctx.localOf ?? (() => null);
  const services = rules.services;
  const { svcIds, destIds, destStart } = ids;
  if (svcIds.length !== services.length || destStart[services.length] !== destIds.length) {
    throw new Error("compile: the ids were synced to other rules");
  }
  const p = new ServicePacker(services.length, destIds.length);
  // The packer copies an address's words at once: one array serves every IPv4 destination.
  const v4 = [0, 0, 0, 0];
  const destWords = (d: Dest): number[] => {
    const v = d.af === 4 ? dottedQuad(d.addr) : null;
    if (v === null) return addrWords(d.af, d.addr);
    v4[0] = v;
    return v4;
  };
  for (let si = 0; si < services.length; si++) {
    const s = services[si];
    const af = s.key.af;
    if (s.dests.length !== destStart[si + 1] - destStart[si]) throw new Error("compile: the ids were synced to other rules");
    p.service(svcIds[si], PROTO[s.key.kind], af, addrWords(af, s.key.addr), s.key.port, s.key.fwmark | 0, s.sched,
      s.schedFlags, s.persistent, s.timeoutSec, maskWords(s), s.ops, s.proxyProtocol);
    // Key text only when something is down (health checks): building it per destination cost a tenth of a second.
    const sk = down.size > 0 ? serviceKeyText(s.key) : "";
    for (let i = 0; i < s.dests.length; i++) {
      const d = s.dests[i];
      const t = d.fwd === "tunnel" ? tunnelFields(d, tunnelOf) : null;
      p.dest(destIds[destStart[si] + i], destWords(d), d.port, d.weight, FWD[d.fwd], d.uThreshold, d.lThreshold,
        down.size === 0 || !down.has(RuleIds.destKey(sk, d)), d.af !== af ? d.af : 0, t ? t.innerMtu : 0, t ? t.tun : undefined,
        d.fwd === "fullnat" ? fullNatLocals(s, d, localOf).flatMap((a) => addrWords(d.af, a)) : undefined);
    }
  }
  const probePins = (ctx.pins ?? []).map((pin) => ({ sport: pin.sport, destId: ids.destId(pin.key) ?? 0 })).filter((pin) => pin.destId > 0);
  return { gen, services: [], packed: p.finish(), stateTimeouts: stateTimeouts(rules.timeouts), sysctl: ctx.sysctl,
    markDevs: ctx.markDevs ?? [], probePins, ...(ctx.fullnatPorts ? { fullnatPorts: ctx.fullnatPorts } : {}) };
}
