// The compiled rule table a worker runs on. The control thread compiles a RuleSet into
// a plain, structured-clonable Snapshot (numbers only) and posts it; the worker turns it
// into an ActiveConfig (typed-array service index, DestSets, scheduler instances) and
// swaps it in between batches. Configuration is immutable during a batch.
//
// A Snapshot's services come in one of two forms: CompiledService objects (tests and
// tools write these) or, in `packed`, flat typed arrays, which is what compile() makes
// for the daemon: posting 100 000 destination objects to the worker cost a third of a
// second of structured cloning, and reading them back as much again. ActiveConfig packs
// the object form first, so it is built one way from either.
import type { Pkt } from "../wire/pkt.ts";
import { DEST_AVAILABLE, DestSet, type Scheduler } from "../sched/scheduler.ts";
import { SCHEDULERS } from "../sched/index.ts";
import { MAX_DEST } from "../stats/counters.ts";
import { FWD_ROUTE } from "../forward/fwd.ts";
import type { TunnelDest } from "../forward/tunnel.ts";

/**
 * Full NAT's default local-port pool: above Linux's default ephemeral range (32768–60999),
 * so the host's own outgoing connections never pick these ports anyway; the daemon also
 * lists them in ip_local_reserved_ports.
 */
export const FULLNAT_PORTS_DEFAULT: readonly [number, number] = [61000, 65534];

export interface CompiledDest {
  id: number;
  /** Four int32 address words (IPv4: word 0). */
  addr: number[];
  port: number;
  weight: number;
  fwd: number;
  uThreshold: number;
  lThreshold: number;
  /**
   * false while the destination's health check says it is down (absent = available): no
   * new connections, and its existing ones are treated as IPVS treats a destination
   * without IP_VS_DEST_F_AVAILABLE (expire_nodest_conn decides: expire or drop).
   */
  available?: boolean;
  /** Tunnel destinations (-i): outer header parameters, and the MTU left for the inner packet (-1: too small). */
  tun?: TunnelDest | null;
  innerMtu?: number;
  /** Full-NAT destinations: the local addresses replies come back to, 4 words each (empty: none usable). */
  laddrs?: number[];
  /** The destination's family when it differs from the service's (full NAT translating, or a tunnel). */
  af?: number;
}

export interface CompiledService {
  id: number;
  /** IP protocol number (6, 17, 132); 0 for fwmark services. */
  proto: number;
  af: number;
  addr: number[];
  port: number;
  fwmark: number;
  sched: string;
  schedFlags: number;
  persistent: boolean;
  timeoutSec: number;
  /** Persistence netmask as four int32 words (IPv4: word 0). */
  mask: number[];
  ops: boolean;
  /** --proxy-protocol: 0 off, 1 or 2 (the PROXY header's version). */
  proxy?: number;
  /** IPVS list order, newest first. */
  dests: CompiledDest[];
}

/** IPVS's sysctls that change data-path behaviour (tslb's defaults in control/options.ts). */
export interface DataplaneSysctls {
  /** 1: a packet of a connection whose destination is gone expires it (and may be rescheduled); 0: silent drop. */
  expireNodestConn: number;
  /** 1: a template pointing at a quiesced (weight 0) destination is dropped on use. */
  expireQuiescentTemplate: number;
  /** Bit 1: a SYN on a TIME_WAIT/CLOSE entry is rescheduled; bit 2: on FIN_WAIT too. 0: never. */
  connReuseMode: number;
  /** tslb-only (--mss-clamp): 1 lowers the MSS of SYNs sent into a tunnel to fit its MTU. */
  mssClamp: number;
  /** IPVS sloppy_tcp: 0 never, 1 always, 2 (tslb) only for hash schedulers: a mid-flow TCP segment may start an entry. */
  sloppyTcp: number;
  /**
   * IPVS drop_packet (its automatic mode): 1 (tslb's default) drops a growing share of new
   * connections' first packets while the table is over 3/4 full, as a flood fills it; 0 never.
   */
  dropPacket: number;
}

/** Words per service in PackedServices.svc. */
export const SVC_WORDS = 18;
export const S_ID = 0, S_PROTO = 1, S_AF = 2, S_PORT = 3, S_FWMARK = 4, S_SCHED_FLAGS = 5, S_PERSISTENT = 6,
  S_TIMEOUT = 7, S_OPS = 8, S_PROXY = 9, S_ADDR = 10, S_MASK = 14;
/** Words per destination in PackedServices.dest. */
export const DEST_WORDS = 13;
export const D_ID = 0, D_PORT = 1, D_WEIGHT = 2, D_FWD = 3, D_UTHRESHOLD = 4, D_LTHRESHOLD = 5, D_AVAILABLE = 6,
  D_AF = 7, D_INNER_MTU = 8, D_ADDR = 9;

/**
 * CompiledService[] as flat arrays: the fields of service s at svc[s * SVC_WORDS + S_*],
 * its destinations (in list order) at dest[j * DEST_WORDS + D_*] for j from destStart[s]
 * to destStart[s + 1]. D_AF is 0 when the destination has the service's family. The rare
 * object-valued fields are listed apart, by destination index j.
 */
export interface PackedServices {
  svc: Int32Array;
  sched: string[];
  dest: Int32Array;
  destStart: Int32Array;
  /** Tunnel destinations: the outer header (null: no route, and D_INNER_MTU is -1). */
  tuns: { j: number; tun: TunnelDest | null }[];
  /** Full-NAT destinations: their local addresses, 4 words each (empty: none usable). */
  laddrs: { j: number; words: number[] }[];
}

/** Fills a PackedServices: one service() call, then one dest() call per destination, per service in order. */
export class ServicePacker {
  private readonly out: PackedServices;
  private s = 0;
  private j = 0;
  constructor(services: number, dests: number) {
    this.out = {
      svc: new Int32Array(services * SVC_WORDS), sched: new Array(services), dest: new Int32Array(dests * DEST_WORDS),
      destStart: new Int32Array(services + 1), tuns: [], laddrs: [],
    };
  }

  service(id: number, proto: number, af: number, addr: readonly number[], port: number, fwmark: number, sched: string,
    schedFlags: number, persistent: boolean, timeoutSec: number, mask: readonly number[], ops: boolean, proxy: number): void {
    const o = this.out;
    const b = this.s * SVC_WORDS;
    const v = o.svc;
    v[b + S_ID] = id; v[b + S_PROTO] = proto; v[b + S_AF] = af; v[b + S_PORT] = port; v[b + S_FWMARK] = fwmark;
    v[b + S_SCHED_FLAGS] = schedFlags; v[b + S_PERSISTENT] = persistent ? 1 : 0; v[b + S_TIMEOUT] = timeoutSec;
    v[b + S_OPS] = ops ? 1 : 0; v[b + S_PROXY] = proxy;
    for (let k = 0; k < 4; k++) { v[b + S_ADDR + k] = addr[k]; v[b + S_MASK + k] = mask[k]; }
    o.sched[this.s] = sched;
    o.destStart[this.s] = this.j;
    this.s++;
    o.destStart[this.s] = this.j;
  }

  /** `af`: the destination's family when it differs from the service's, else 0. */
  dest(id: number, addr: readonly number[], port: number, weight: number, fwd: number, uThreshold: number, lThreshold: number,
    available: boolean, af: number, innerMtu: number, tun: TunnelDest | null | undefined, laddrs: number[] | undefined): void {
    const o = this.out;
    const b = this.j * DEST_WORDS;
    const v = o.dest;
    v[b + D_ID] = id; v[b + D_PORT] = port; v[b + D_WEIGHT] = weight; v[b + D_FWD] = fwd;
    v[b + D_UTHRESHOLD] = uThreshold; v[b + D_LTHRESHOLD] = lThreshold; v[b + D_AVAILABLE] = available ? 1 : 0;
    v[b + D_AF] = af; v[b + D_INNER_MTU] = innerMtu;
    for (let k = 0; k < 4; k++) v[b + D_ADDR + k] = addr[k];
    if (tun !== undefined) o.tuns.push({ j: this.j, tun });
    if (laddrs !== undefined) o.laddrs.push({ j: this.j, words: laddrs });
    this.j++;
    o.destStart[this.s] = this.j;
  }

  finish(): PackedServices {
    return this.out;
  }
}

/** The object form packed. */
export function packServices(services: readonly CompiledService[]): PackedServices {
  let n = 0;
  for (const s of services) n += s.dests.length;
  const p = new ServicePacker(services.length, n);
  for (const s of services) {
    p.service(s.id, s.proto, s.af, s.addr, s.port, s.fwmark | 0, s.sched, s.schedFlags, s.persistent, s.timeoutSec, s.mask, s.ops, s.proxy ?? 0);
    for (const d of s.dests) {
      p.dest(d.id, d.addr, d.port, d.weight, d.fwd, d.uThreshold, d.lThreshold, d.available !== false,
        d.af !== undefined && d.af !== s.af ? d.af : 0, d.innerMtu ?? 0, d.tun, d.laddrs);
    }
  }
  return p.finish();
}

export interface Snapshot {
  gen: number;
  /** The services as objects; empty when `packed` holds them. */
  services: CompiledService[];
  /** The services as flat arrays (compile() makes this form); when set, `services` is ignored. */
  packed?: PackedServices;
  /** Per TCP/UDP state timeouts in seconds (conntrack/tcp_state.ts order). */
  stateTimeouts: number[];
  sysctl: DataplaneSysctls;
  /** One TUN per firewall mark in use (control/mark_devices.ts): packets read there carry that mark. */
  markDevs: { mark: number; name: string; fd: number }[];
  /** Health probes pinned to a destination (--check-via-vip of tunnel servers): source port → dest id. */
  probePins?: { sport: number; destId: number }[];
  /** Full NAT's local-port pool, inclusive (reserved from the host's ephemeral ports). */
  fullnatPorts?: [number, number];
}

/** Open-addressing map (proto, port, address words) → service index, in typed arrays. */
class ServiceIndex {
  private readonly mask: number;
  private readonly keys: Int32Array; // 6 words per slot: proto<<16|port, a0..a3, used
  private readonly vals: Int32Array;
  constructor(entries: number) {
    let size = 8;
    while (size < entries * 2) size *= 2;
    this.mask = size - 1;
    this.keys = new Int32Array(size * 6);
    this.vals = new Int32Array(size).fill(-1);
  }
  private static hash(pp: number, a0: number, a1: number, a2: number, a3: number): number {
    let h = Math.imul(pp ^ 0x9e3779b9, 0x85ebca6b) ^ a0;
    h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ a1;
    h = Math.imul(h ^ (h >>> 13), 0x85ebca6b) ^ a2;
    h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35) ^ a3;
    return (h ^ (h >>> 15)) | 0;
  }
  set(proto: number, port: number, a0: number, a1: number, a2: number, a3: number, v: number): void {
    const pp = (proto << 16) | port;
    let i = ServiceIndex.hash(pp, a0, a1, a2, a3) & this.mask;
    while (this.vals[i] !== -1) i = (i + 1) & this.mask;
    const k = i * 6;
    this.keys[k] = pp; this.keys[k + 1] = a0; this.keys[k + 2] = a1; this.keys[k + 3] = a2; this.keys[k + 4] = a3;
    this.vals[i] = v;
  }
  get(proto: number, port: number, a0: number, a1: number, a2: number, a3: number): number {
    const pp = (proto << 16) | port;
    let i = ServiceIndex.hash(pp, a0, a1, a2, a3) & this.mask;
    for (;;) {
      const v = this.vals[i];
      if (v === -1) return -1;
      const k = i * 6;
      if (this.keys[k] === pp && this.keys[k + 1] === a0 && this.keys[k + 2] === a1 && this.keys[k + 3] === a2 && this.keys[k + 4] === a3) return v;
      i = (i + 1) & this.mask;
    }
  }
}

/** The local addresses of a destination that is not full NAT (shared: never written). */
const NO_LADDRS = new Int32Array(0);

/** Marks "some service uses this address" in the index (proto 0, port 0). */
const VIP_MARK = -2;
/** Index key "protocol" of fwmark services: (FWM_KEY, 0, mark, af, 0, 0). */
const FWM_KEY = 0xff;
/** Index key "protocol" of VIPs with a direct-routing destination (ARP is answered for them). */
const DR_VIP_KEY = 0xfe;

export class ActiveConfig {
  readonly gen: number;
  readonly count: number;
  readonly svcId: Int32Array;
  readonly svcProto: Uint8Array;
  readonly svcPort: Int32Array;
  /** Firewall mark of fwmark services, else 0. */
  readonly svcFwmark: Int32Array;
  readonly svcPersistent: Uint8Array;
  readonly svcTimeout: Int32Array;
  /** Persistence netmask words, 4 per service. */
  readonly svcMask: Int32Array;
  /** One-packet scheduling (-o), only ever set for UDP services. */
  readonly svcOps: Uint8Array;
  /** --proxy-protocol version per service (0: off). */
  readonly svcProxy: Uint8Array;
  /** 1 when the service's scheduler picks by hash (sh, dh, mh): the same flow always gets the same server. */
  readonly svcHashSched: Uint8Array;
  readonly dests: DestSet[];
  readonly scheds: Scheduler[];
  /**
   * By dest id: 1 while the destination exists in this snapshot and is available (IPVS's
   * IP_VS_DEST_F_AVAILABLE, which a deleted and a health-failed destination both lack).
   */
  readonly destPresent: Uint8Array;
  /** By dest id: its index in its service's DestSet (a dest id belongs to one service). */
  readonly destIndex: Int32Array;
  /** By dest id: the index of its service. */
  readonly destSvc: Int32Array;
  readonly sysctl: DataplaneSysctls;
  /** By source port: 1 + the destination id a health probe from that port must go to; null when no pins. */
  readonly pinBySport: Int32Array | null;
  /** IPv4 VIPs with direct-routing destinations (gratuitous ARP when one appears). */
  readonly drVips: number[] = [];
  /** IPv6 VIPs with direct-routing destinations (unsolicited NA when one appears). */
  readonly drVips6: number[][] = [];
  /** Per service, per destination index: the tunnel of a -i destination, else null. */
  readonly tuns: (TunnelDest | null)[][] = [];
  /** Per service, per destination index: MTU left for the inner packet (0: not a tunnel, -1: no route / too small). */
  readonly innerMtu: Int32Array[] = [];
  /** Per service, per destination index: full-NAT local addresses (4 words each), empty for other methods. */
  readonly laddrs: Int32Array[][] = [];
  /** Per service, per destination index: its family (4 or 6). */
  readonly destAf: Uint8Array[] = [];
  readonly fullnatPortLo: number;
  readonly fullnatPortHi: number;
  readonly timeouts: Int32Array;
  private readonly index: ServiceIndex;

  constructor(snap: Snapshot, conns: Int32Array, prev: ActiveConfig | null) {
    this.gen = snap.gen;
    const p = snap.packed ?? packServices(snap.services);
    const n = p.sched.length;
    this.count = n;
    this.svcId = new Int32Array(n);
    this.svcProto = new Uint8Array(n);
    this.svcPort = new Int32Array(n);
    this.svcFwmark = new Int32Array(n);
    this.svcPersistent = new Uint8Array(n);
    this.svcTimeout = new Int32Array(n);
    this.svcMask = new Int32Array(n * 4);
    this.svcOps = new Uint8Array(n);
    this.svcHashSched = new Uint8Array(n);
    this.svcProxy = new Uint8Array(n);
    this.destIndex = new Int32Array(MAX_DEST).fill(-1);
    this.destSvc = new Int32Array(MAX_DEST).fill(-1);
    this.sysctl = { ...snap.sysctl };
    const pins = snap.probePins ?? [];
    this.pinBySport = pins.length > 0 ? new Int32Array(65536) : null;
    for (const pin of pins) this.pinBySport![pin.sport] = pin.destId + 1;
    this.dests = [];
    this.scheds = [];
    this.destPresent = new Uint8Array(MAX_DEST);
    this.timeouts = Int32Array.from(snap.stateTimeouts);
    [this.fullnatPortLo, this.fullnatPortHi] = snap.fullnatPorts ?? [FULLNAT_PORTS_DEFAULT[0], FULLNAT_PORTS_DEFAULT[1]];
    this.index = new ServiceIndex(n * 2 + 1);
    // Tunnels and local addresses by destination index: few, listed apart in the packed form.
    const tunOf = new Map<number, TunnelDest | null>();
    for (const t of p.tuns) tunOf.set(t.j, t.tun);
    const laddrsOf = new Map<number, Int32Array>();
    for (const l of p.laddrs) laddrsOf.set(l.j, Int32Array.from(l.words));
    // The previous config's schedulers by service id: their state (rr cursor, wrr weight)
    // survives unrelated changes. A map, not a search per service (quadratic at 10 000).
    const prevSched = new Map<number, Scheduler>();
    if (prev) for (let s = 0; s < prev.count; s++) prevSched.set(prev.svcId[s], prev.scheds[s]);
    const sv = p.svc, dv = p.dest;
    for (let s = 0; s < n; s++) {
      const b = s * SVC_WORDS;
      const id = sv[b + S_ID], proto = sv[b + S_PROTO], af = sv[b + S_AF], port = sv[b + S_PORT], fwmark = sv[b + S_FWMARK];
      const sched = p.sched[s];
      this.svcId[s] = id;
      this.svcProto[s] = proto;
      this.svcPort[s] = port;
      this.svcPersistent[s] = sv[b + S_PERSISTENT];
      this.svcTimeout[s] = sv[b + S_TIMEOUT];
      for (let k = 0; k < 4; k++) this.svcMask[s * 4 + k] = sv[b + S_MASK + k];
      this.svcOps[s] = sv[b + S_OPS] !== 0 && proto === 17 ? 1 : 0;
      this.svcHashSched[s] = sched === "sh" || sched === "dh" || sched === "mh" ? 1 : 0;
      this.svcFwmark[s] = fwmark;
      this.svcProxy[s] = sv[b + S_PROXY];
      const a0 = sv[b + S_ADDR], a1 = sv[b + S_ADDR + 1], a2 = sv[b + S_ADDR + 2], a3 = sv[b + S_ADDR + 3];
      if (fwmark !== 0) this.index.set(FWM_KEY, 0, fwmark, af, 0, 0, s);
      else {
        this.index.set(proto, port, a0, a1, a2, a3, s);
        if (this.index.get(0, 0, a0, a1, a2, a3) === -1) this.index.set(0, 0, a0, a1, a2, a3, VIP_MARK);
      }
      const first = p.destStart[s], count = p.destStart[s + 1] - first;
      const ds = new DestSet(count, conns);
      const tuns: (TunnelDest | null)[] = new Array(count);
      const innerMtu = new Int32Array(count);
      const laddrs: Int32Array[] = new Array(count);
      const destAf = new Uint8Array(count);
      let route = false;
      for (let i = 0; i < count; i++) {
        const j = first + i;
        const d = j * DEST_WORDS;
        const did = dv[d + D_ID];
        const available = dv[d + D_AVAILABLE] !== 0;
        ds.id[i] = did;
        ds.weight[i] = dv[d + D_WEIGHT];
        ds.flags[i] = available ? DEST_AVAILABLE : 0;
        ds.port[i] = dv[d + D_PORT];
        ds.fwd[i] = dv[d + D_FWD];
        for (let k = 0; k < 4; k++) ds.addr[i * 4 + k] = dv[d + D_ADDR + k];
        if (ds.fwd[i] === FWD_ROUTE) route = true;
        this.destPresent[did] = available ? 1 : 0;
        this.destIndex[did] = i;
        this.destSvc[did] = s;
        tuns[i] = tunOf.get(j) ?? null;
        innerMtu[i] = dv[d + D_INNER_MTU];
        laddrs[i] = laddrsOf.get(j) ?? NO_LADDRS;
        destAf[i] = dv[d + D_AF] || af;
      }
      if (fwmark === 0 && route && this.index.get(DR_VIP_KEY, 0, a0, a1, a2, a3) === -1) {
        this.index.set(DR_VIP_KEY, 0, a0, a1, a2, a3, s);
        if (af === 4) this.drVips.push(a0);
        else this.drVips6.push([a0, a1, a2, a3]);
      }
      this.dests.push(ds);
      this.tuns.push(tuns);
      this.innerMtu.push(innerMtu);
      this.laddrs.push(laddrs);
      this.destAf.push(destAf);
      // Keep the scheduler's state (rr cursor, wrr weight) across unrelated changes.
      const old = prevSched.get(id);
      const sched0 = old !== undefined && old.name === sched ? old : SCHEDULERS[sched](sv[b + S_SCHED_FLAGS]);
      // Several workers: rr/wrr positions live in shared memory, one slot per service id.
      sched0.attach?.(id, this.gen);
      sched0.rebuild(ds);
      this.scheds.push(sched0);
    }
  }

  /**
   * Service index for a packet that may start a connection, in IPVS's order: the fwmark
   * service of the packet's mark (same family), exact (proto, VIP, port), then the
   * port-0 service. -1 if none.
   */
  matchService(p: Pkt): number {
    if (p.mark !== 0) {
      const m = this.index.get(FWM_KEY, 0, p.mark, p.ipv, 0, 0);
      if (m >= 0) return m;
    }
    const s = this.index.get(p.proto, p.dport, p.dst0, p.dst1, p.dst2, p.dst3);
    if (s >= 0) return s;
    const z = this.index.get(p.proto, 0, p.dst0, p.dst1, p.dst2, p.dst3);
    return z >= 0 ? z : -1;
  }

  /** True when IPv4 address `ip` is the VIP of a service with a direct-routing destination. */
  isDrVip4(ip: number): boolean {
    return this.index.get(DR_VIP_KEY, 0, ip, 0, 0, 0) !== -1;
  }

  /** True when IPv6 address a0..a3 is the VIP of a service with a direct-routing destination. */
  isDrVip6(a0: number, a1: number, a2: number, a3: number): boolean {
    return this.index.get(DR_VIP_KEY, 0, a0, a1, a2, a3) !== -1;
  }

  /** True when the packet's destination is the address of any service. */
  isVip(p: Pkt): boolean {
    return this.index.get(0, 0, p.dst0, p.dst1, p.dst2, p.dst3) !== -1;
  }
}
