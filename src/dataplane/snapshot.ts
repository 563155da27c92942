// The compiled rule table a worker runs on. The control thread compiles a RuleSet into
// a plain, structured-clonable Snapshot (numbers only) and posts it; the worker turns it
// into an ActiveConfig (typed-array service index, DestSets, scheduler instances) and
// swaps it in between batches. Configuration is immutable during a batch.
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
}

export interface Snapshot {
  gen: number;
  services: CompiledService[];
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
    const n = snap.services.length;
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
    for (let s = 0; s < n; s++) {
      const svc = snap.services[s];
      this.svcId[s] = svc.id;
      this.svcProto[s] = svc.proto;
      this.svcPort[s] = svc.port;
      this.svcPersistent[s] = svc.persistent ? 1 : 0;
      this.svcTimeout[s] = svc.timeoutSec;
      this.svcMask.set(svc.mask, s * 4);
      this.svcOps[s] = svc.ops && svc.proto === 17 ? 1 : 0;
      this.svcHashSched[s] = svc.sched === "sh" || svc.sched === "dh" || svc.sched === "mh" ? 1 : 0;
      this.svcFwmark[s] = svc.fwmark | 0;
      this.svcProxy[s] = svc.proxy ?? 0;
      const a = svc.addr;
      if (svc.fwmark !== 0) this.index.set(FWM_KEY, 0, svc.fwmark | 0, svc.af, 0, 0, s);
      else {
        this.index.set(svc.proto, svc.port, a[0], a[1], a[2], a[3], s);
        if (this.index.get(0, 0, a[0], a[1], a[2], a[3]) === -1) this.index.set(0, 0, a[0], a[1], a[2], a[3], VIP_MARK);
      }
      if (svc.fwmark === 0 && svc.dests.some((d) => d.fwd === FWD_ROUTE) && this.index.get(DR_VIP_KEY, 0, a[0], a[1], a[2], a[3]) === -1) {
        this.index.set(DR_VIP_KEY, 0, a[0], a[1], a[2], a[3], s);
        if (svc.af === 4) this.drVips.push(a[0]);
        else this.drVips6.push([a[0], a[1], a[2], a[3]]);
      }
      const ds = new DestSet(svc.dests.length, conns);
      svc.dests.forEach((d, i) => {
        ds.id[i] = d.id;
        ds.weight[i] = d.weight;
        const available = d.available !== false;
        ds.flags[i] = available ? DEST_AVAILABLE : 0;
        ds.port[i] = d.port;
        ds.fwd[i] = d.fwd;
        ds.addr.set(d.addr, i * 4);
        this.destPresent[d.id] = available ? 1 : 0;
        this.destIndex[d.id] = i;
        this.destSvc[d.id] = s;
      });
      this.dests.push(ds);
      this.tuns.push(svc.dests.map((d) => d.tun ?? null));
      this.innerMtu.push(Int32Array.from(svc.dests.map((d) => d.innerMtu ?? 0)));
      this.laddrs.push(svc.dests.map((d) => Int32Array.from(d.laddrs ?? [])));
      this.destAf.push(Uint8Array.from(svc.dests.map((d) => d.af ?? svc.af)));
      // Keep the scheduler's state (rr cursor, wrr weight) across unrelated changes.
      const old = prev?.schedulerFor(svc.id, svc.sched);
      const sched = old ?? SCHEDULERS[svc.sched](svc.schedFlags);
      sched.rebuild(ds);
      this.scheds.push(sched);
    }
  }

  private schedulerFor(svcId: number, name: string): Scheduler | undefined {
    for (let s = 0; s < this.count; s++) if (this.svcId[s] === svcId && this.scheds[s].name === name) return this.scheds[s];
    return undefined;
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
