// The daemon role: tslb's "kernel module". Owns the TUN device, the routes and rules
// (through NetworkState), the rule table, the data-plane worker and its counters; serves
// the control socket. Every state change goes applyAll → network → compile → worker, and
// the reply is sent once the worker runs on the new rules. SIGTERM, SIGINT and the
// shutdown request remove every device, route and rule the daemon made.
import { existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { dirname } from "node:path";
import { DataplaneHost } from "../dataplane/host.ts";
import { allowedCpuMask, setRps } from "../io/rps.ts";
import { SysError, close } from "../io/libc.ts";
import { type XdpAttachment, type XdpMaps, attachXdp, createXdpMaps, retargetXdp } from "../io/xdp.ts";
import { XSK_UMEM_BYTES, type XskPort, allocXskArea, openXsk } from "../io/xsk.ts";
import type { WorkerInit } from "../dataplane/worker.ts";
import { StealKeys } from "./xdp_keys.ts";
import { XDP_STAGING_BYTES } from "../dataplane/xdp_path.ts";
import { RtNetlink } from "../io/rtnetlink.ts";
import { sysctlRead, sysctlWrite } from "../io/sysctl.ts";
import { type OffloadMaps, attachTcOffload, createOffloadMaps } from "../io/tc_offload.ts";
import { OFFLOAD_HINT_SLOTS } from "../dataplane/flow_offload.ts";
import { openTap, openTun, openTunQueue, type TunDevice } from "../io/tun.ts";
import { steerQueues } from "../io/steering.ts";
import { type Sock, openRaw } from "../io/raw.ts";
import { macHi, macLo, macText, macWrite } from "../wire/ethernet.ts";
import { SCHEDULER_NAMES } from "../sched/index.ts";
import {
  COUNTER_WORDS, DROP_BASE, K_CONNS, K_INBYTES, K_INPKTS, K_OUTBYTES, K_OUTPKTS, MISC_BASE, STATS_WIDTH, destBase, sumCounter, svcBase,
} from "../stats/counters.ts";
import { DS_ACTIVE, DS_FLAGS, DS_INACTIVE, DS_PERSIST, DS_STRIDE, destIdle, destSetThresholds } from "../conntrack/dest_state.ts";
import { S_CLOSE, S_TIME_WAIT, STATE_NAMES } from "../conntrack/tcp_state.ts";
import { type ConnTable, F_TEMPLATE } from "../conntrack/table.ts";
import { FWD_FULLNAT } from "../forward/fwd.ts";
import { formatIPv4, formatIPv6 } from "../wire/addr.ts";
import { DROP_NAMES } from "../wire/drop.ts";
import { applyShared } from "./apply.ts";
import { type CompileContext, compile, fullNatLocals, type TunnelRoute } from "./compile.ts";
import { IpvsError, MSG, opError } from "./errors.ts";
import { RuleIds } from "./ids.ts";
import type { Command } from "./commands.ts";
import { type Dest, emptyRuleSet, type RuleSet, sameServiceKey, type ServiceKey, serviceKeyText } from "./model.ts";
import { MarkDevices } from "./mark_devices.ts";
import { NetworkState, planNetwork } from "./network.ts";
import type { GlobalOptions } from "./options.ts";
import type { ConnView, DestView, LaddrReply, ListReply, Reply, Request, ServiceView, Stats, StatusReply } from "./protocol.ts";
import { serveControl } from "./socket.ts";
import { listText } from "../cli/list_text.ts";
import { formatSave } from "../cli/rules_text.ts";
import { planRestore } from "../cli/dry_run.ts";
import { changeSummary } from "./summary.ts";
import { lazyNames, type NameFiles, NO_NAMES, type Names, systemNames } from "../cli/names.ts";
import { DROP } from "../wire/drop.ts";
import { MAX_DEST, MAX_SVC, MISC_NAMES } from "../stats/counters.ts";
import { type WorkerPackets, formatMetrics, serveMetrics } from "../stats/prometheus.ts";
import { HealthControl } from "./health.ts";
import { type Logger, makeLogger } from "./log.ts";
import { parseListen } from "./options.ts";
import { readIfExists, stateText, writeAtomic } from "./state_file.ts";
import { RATE_PERIOD_SEC, RateEstimator } from "../stats/rates.ts";

/** How often the daemon looks for connections dropped at a full table (one log line per period at most). */
const TABLE_WATCH_MS = 5000;
/** How often the XDP hand-off checks its bridges' MACs (a netlink request per interface). */
const XDP_MAC_WATCH_MS = 1000;

/** MACs as text, "02:00:c6:12:01:01,..." (to compare and to log). */
function macHex(macs: readonly Uint8Array[]): string {
  return macs.map((m) => {
    const dv = new DataView(m.buffer, m.byteOffset, 6);
    return macText(macHi(dv, 0), macLo(dv, 0));
  }).join(",");
}

/** Packets the kernel may queue on the TUN for the data plane. */
const TUN_TXQUEUELEN = 10000;

const PROTO_NAME: Record<number, string> = { 6: "TCP", 17: "UDP", 132: "SCTP", 0: "IP" };

/** Where a connection entry's flags keep its forwarding method (dataplane/pipeline.ts FWD_SHIFT). */
const FWD_SHIFT = 4;

export class Daemon {
  private rules: RuleSet = emptyRuleSet();
  private gen = 1;
  private readonly host: DataplaneHost;
  private readonly ids: RuleIds;
  /** Counter values that read as zero (set by -Z and when an id is (re)assigned). */
  private readonly zero = new Float64Array(COUNTER_WORDS);
  private tun: TunDevice | null = null;
  /** The TUN's extra queues, one per worker after the first (--workers). */
  private queues: TunDevice[] = [];
  private tap: TunDevice | null = null;
  /** The MAC tslb answers ARP with on the DR segment (openTap), which clients send the VIP's frames to. */
  private drMac: Uint8Array | null = null;
  /** The rps_cpus mask set on the TUN queues ("" = none). */
  private rps = "";
  private readonly icmp: Sock[] = [];
  /** The XDP hand-off (--xdp): its steal map's keys, and every fd it holds open (links, maps, sockets). */
  private steal: StealKeys | null = null;
  private readonly xdpFds: number[] = [];
  /** Each interface's program, with the MACs it takes frames for ("02:00:..,.."), to follow a bridge's MAC. */
  private readonly xdpPrograms: { name: string; ifindex: number; master: number; macs: string; att: XdpAttachment }[] = [];
  private xdpMaps: XdpMaps | null = null;
  private xdpTimer: ReturnType<typeof setInterval> | null = null;
  /** The bulk offload's state for doctor: "on (ifaces)", "off", or "off: why". */
  private bulkOffload = "off";
  /** Its maps while it is on, and its tc links on the ports of a bridge named in --xdp, by port name. */
  private offloadMaps: OffloadMaps | null = null;
  private readonly portTc = new Map<string, { ifindex: number; bridge: string; link: number }>();
  /** Ports whose attach failed, with the ifindex it failed on: logged once, tried again only as a new interface. */
  private readonly portTcFailed = new Map<string, number>();
  /** "lbc (generic)" per interface of the hand-off, for doctor. */
  private xdpModes: string[] = [];
  private nl: RtNetlink | null = null;
  private net: NetworkState | null = null;
  private marks: MarkDevices | null = null;
  private stopServer: (() => void) | null = null;
  private stopping = false;
  private readonly rates = new RateEstimator();
  private rateTimer: ReturnType<typeof setInterval> | null = null;

  private health: HealthControl | null = null;
  /** Rule-change batches by "source|result" (tslb_rule_applies_total). */
  private readonly applies: Record<string, number> = {};
  /** Raw totals over every service slot that read as zero (a -Z of everything). */
  private readonly totalZero = new Float64Array(STATS_WIDTH);
  private metrics: { stop: () => void } | null = null;
  private opsTimer: ReturnType<typeof setInterval> | null = null;
  private tableFullSeen = 0;
  private noPortSeen = 0;
  private readonly startTimeSec = Math.floor(Date.now() / 1000);

  constructor(private readonly opts: GlobalOptions, private readonly log: Logger) {
    this.host = new DataplaneHost(opts.connMax);
    const state = this.host.table.destState;
    this.ids = new RuleIds((id) => !destIdle(state, id));
  }

  async start(): Promise<void> {
    const o = this.opts;
    // One worker: a single-queue TUN (a multi-queue one hashes every packet to pick and to
    // learn queues).
    this.tun = openTun(o.tun, { offload: o.offload, multiQueue: o.workers > 1 });
    this.nl = RtNetlink.open();
    const idx = this.nl.linkIndex(this.tun.name);
    // The kernel queues packets for tslb here: a long queue absorbs bursts (and floods)
    // instead of dropping at 500 packets (perf-anchors used 10000 too).
    this.nl.linkSetTxQueueLen(idx, TUN_TXQUEUELEN);
    this.nl.linkSetUp(idx);
    // What tslb writes into the TUN carries the client's address as source (routed out of
    // another interface) or a VIP / firewall-marked address as source (maybe not routed
    // at all). The kernel uses max(conf/all, conf/<tun>): with all=0 the TUN gets 0 (no
    // check, needed for unrouted fwmark addresses); otherwise 2 (loose) keeps NAT working.
    const allRpf = sysctlRead("net/ipv4/conf/all/rp_filter").trim();
    sysctlWrite(`net/ipv4/conf/${this.tun.name}/rp_filter`, allRpf === "0" ? "0" : "2");
    // Tunnel packets tslb writes carry the host's own address as source: accept them.
    sysctlWrite(`net/ipv4/conf/${this.tun.name}/accept_local`, "1");
    if (allRpf !== "0") this.log(`net.ipv4.conf.all.rp_filter=${allRpf}: replies from fwmark services need a route to their destination addresses`);
    if (sysctlRead("net/ipv4/ip_forward").trim() !== "1") {
      sysctlWrite("net/ipv4/ip_forward", "1");
      this.log("enabled net.ipv4.ip_forward (the kernel forwards what tslb writes into the TUN)");
    }
    this.net = new NetworkState(this.nl, { tunName: this.tun.name, tunIndex: idx, vipDev: o.vipDev, fullnatPorts: o.fullnatPorts, log: this.log });
    this.net.installBase();
    this.marks = new MarkDevices(this.nl, this.log);
    const queues = this.openQueues();
    await this.host.start(queues.map((q) => q.fd), this.tun.name, this.tun.vnet, o.coalesce, compile(this.rules, this.ids, this.gen, this.compileContext(this.rules)), this.openTap(), this.openIcmp(4), this.openIcmp(6), this.openXdp(), this.openBulkOffload());
    this.health = new HealthControl(this.nl, this.log, () => void this.enqueue(() => this.recompile()));
    await this.loadAtStart();
    this.stopServer = serveControl(o.socket, (req) => this.handle(req), this.log);
    if (o.metrics) {
      const { hostname, port } = parseListen(o.metrics);
      this.metrics = serveMetrics(hostname, port, () => this.metricsText());
      this.log.event("metrics", `Prometheus metrics on http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}/metrics`);
    }
    this.opsTimer = setInterval(() => this.watchTable(), TABLE_WATCH_MS);
    this.rateTimer = setInterval(() => this.sampleRates(), RATE_PERIOD_SEC * 1000);
  }

  /** --rps: the kernel's work on what tslb writes into `dev` spreads over the allowed CPUs. */
  private steerRx(dev: string, queues: number): void {
    if (!this.opts.rps) return;
    const mask = allowedCpuMask();
    const why = setRps(dev, queues, mask);
    if (why === "") this.rps = mask;
    else this.log(`no receive steering on ${dev}: ${why}`);
  }

  /**
   * The TAP for direct routing: tslb is a host on the bridge behind it, with a MAC of its
   * own (locally administered, stable across restarts) — not the TAP's kernel-side MAC,
   * which belongs to the bridge port. Without --bridge the TAP waits unattached (DR packets cannot leave).
   */
  private openTap(): { fd: number; name: string; macHi: number; macLo: number } {
    const tap = openTap(this.opts.tap);
    this.tap = tap;
    const nl = this.nl!;
    const idx = nl.linkIndex(tap.name);
    // A bridge without a fixed MAC takes its lowest port's: a random TAP MAC could become
    // the bridge's and strand every host that has the old one in its ARP cache. 0xfe...
    // (as libvirt gives its taps) is never the lowest.
    const tapMac = new Uint8Array(6);
    tapMac[0] = 0xfe;
    crypto.getRandomValues(tapMac.subarray(1));
    nl.linkSetAddress(idx, tapMac);
    if (this.opts.bridge) nl.linkSetMaster(idx, nl.linkIndex(this.opts.bridge));
    else this.log(`no --bridge: ${tap.name} stays unattached, direct-routing (-g) destinations cannot be reached`);
    // As for the TUN: at 1 000 wrk connections the default 1 000-packet queue overflowed
    // (2 921 drops in 6 s) and p99 sat at the 200 ms retransmission timeout.
    nl.linkSetTxQueueLen(idx, TUN_TXQUEUELEN);
    nl.linkSetUp(idx);
    this.steerRx(tap.name, 1);
    // The same MAC after a restart (derived, not random): neighbours' ARP caches stay right
    // and flows through a restarted daemon keep going.
    const seed = `${readFirst("/etc/machine-id", "/proc/sys/kernel/hostname")}|${this.opts.bridge}|${tap.name}`;
    const h = new DataView(new ArrayBuffer(8));
    h.setBigUint64(0, BigInt.asUintN(64, BigInt(Bun.hash(seed))));
    const hi = (((h.getUint8(0) & 0xfc) | 0x02) << 8) | h.getUint8(1);
    const lo = h.getInt32(2);
    this.log(`direct routing on ${tap.name}${this.opts.bridge ? ` (bridge ${this.opts.bridge})` : ""} as ${macText(hi, lo)}`);
    this.drMac = new Uint8Array(6);
    macWrite(new DataView(this.drMac.buffer), 0, hi, lo);
    return { fd: tap.fd, name: tap.name, macHi: hi, macLo: lo };
  }

  /**
   * One TUN queue per worker (--workers). With more than one, an eBPF program steers each
   * direction of a flow to one queue (io/steering.ts); without it (bpf(2) refused) the
   * kernel's own choice still works, because the workers share the table, but a flow's
   * packets may then be reordered between workers.
   */
  private openQueues(): TunDevice[] {
    const tun = this.tun!;
    const n = this.opts.workers;
    this.queues = [];
    for (let i = 1; i < n; i++) this.queues.push(openTunQueue(tun.name, tun.vnet));
    if (n > 1) {
      try {
        steerQueues(tun.fd);
      } catch (e) {
        this.log(`no queue steering (${(e as Error).message}): the kernel picks each packet's worker`);
      }
    }
    this.log(`${n} data-plane worker${n > 1 ? "s" : ""}, offloads ${tun.vnet ? "on" : "off"}`);
    this.steerRx(tun.name, n);
    return [tun, ...this.queues];
  }

  /**
   * The XDP hand-off (--xdp): an AF_XDP socket on each interface named, each with its slice
   * of one packet area, and the XDP program that feeds it; the steal map starts empty and
   * follows the rules (syncSteal). Any failure stops the start: the user asked for it.
   */
  private openXdp(): WorkerInit["xdp"] {
    const names = this.opts.xdp;
    if (names.length === 0) return null;
    const maps = createXdpMaps();
    this.xdpFds.push(...maps.steal, maps.bulk);
    const area = allocXskArea(names.length, XDP_STAGING_BYTES);
    const ports: XskPort[] = [];
    const drSegment: boolean[] = [];
    const modes: string[] = [];
    const bridge = this.opts.bridge ? this.nl!.link(this.opts.bridge).index : 0;
    names.forEach((name, i) => {
      const { index: ifindex, address, master } = this.nl!.link(name);
      const port = openXsk(name, ifindex, address, area.addr, i * XSK_UMEM_BYTES, this.opts.offload);
      this.xdpFds.push(port.fd);
      const macs = this.xdpMacs(address, master);
      const att = attachXdp(ifindex, name, macs, maps, port.fd, this.opts.xdpMode, this.opts.xdpForward);
      this.xdpFds.push(att.link, att.xskMap);
      this.xdpPrograms.push({ name, ifindex, master, macs: macHex(macs), att });
      ports.push(port);
      drSegment.push(bridge !== 0 && master === bridge);
      modes.push(`${name} (${att.mode}${port.txCsum ? ", tx csum" : ""})`);
    });
    this.steal = new StealKeys(maps.steal);
    this.xdpMaps = maps;
    this.xdpModes = modes;
    this.xdpTimer = setInterval(() => {
      this.followBridgeMacs();
      this.followBridgePorts();
    }, XDP_MAC_WATCH_MS);
    this.log(`xdp hand-off on ${modes.join(", ")}`);
    return { areaAddr: area.addr, areaBytes: names.length * XSK_UMEM_BYTES + XDP_STAGING_BYTES, ports, drSegment, join: this.opts.coalesce && this.opts.xdpJoin };
  }

  /**
   * The bulk offload (--bulk-offload, on by default with --xdp): its maps, and its tc
   * program on each interface of the hand-off. The rewritten frames are routed with a
   * VIP as source from the real servers' side, which a strict reverse-path filter drops:
   * then it stays off. A failure to load or attach on those interfaces is logged and leaves
   * it off (the TUN carries the bulk frames as before); one on a bridge's port leaves only
   * that port's transfers to the bridge's path (followBridgePorts).
   */
  private openBulkOffload(): WorkerInit["bulkOffload"] {
    // After openXdp (the argument before it): its interfaces, with their bridges.
    const ports = this.xdpPrograms;
    this.bulkOffload = "off";
    if (ports.length === 0 || !this.opts.bulkOffload) return null;
    // The device whose IPv4 settings apply to what arrives on a port: its bridge, if any.
    const l3 = new Set(ports.map((p) => (p.master !== 0 ? this.nl!.link(p.master).name : p.name)));
    const strict = [...l3].filter((d) => rpFilter(d) === 1);
    if (strict.length > 0) {
      this.bulkOffload = `off: strict rp_filter on ${strict.join(", ")}`;
      this.log(`bulk offload ${this.bulkOffload} (it would drop the rewritten replies); bulk frames go through the TUN`);
      return null;
    }
    const made: number[] = [];
    try {
      const maps = createOffloadMaps();
      made.push(maps.v4, maps.v6);
      for (const p of ports) made.push(attachTcOffload(p.ifindex, p.name, maps));
      this.xdpFds.push(...made);
      this.offloadMaps = maps;
    } catch (e) {
      for (const fd of made) close(fd);
      this.bulkOffload = `off: ${(e as Error).message}`;
      this.log(`bulk offload ${this.bulkOffload}; bulk frames go through the TUN`);
      return null;
    }
    // On a bridge's ports too: there a transfer's frames are rewritten and sent on before
    // the bridge (and its XDP program, which would copy each super-packet) sees them. The
    // ports it has now, and then every XDP_MAC_WATCH_MS those that join or leave.
    this.followBridgePorts();
    this.bulkOffload = `on (${this.bulkOffloadPlaces()})`;
    this.log(`bulk offload on ${this.bulkOffloadPlaces()}`);
    return { maps: this.offloadMaps, hint: new SharedArrayBuffer(4 * OFFLOAD_HINT_SLOTS) };
  }

  /**
   * The destination MACs the hand-off takes on an interface: the interface's own, its
   * bridge's when it is a port of one, and tslb's DR MAC.
   */
  private xdpMacs(address: Uint8Array, master: number): Uint8Array[] {
    const macs = [address];
    if (master !== 0) macs.push(this.nl!.link(master).address);
    if (this.drMac !== null) macs.push(this.drMac);
    return macs.filter((m) => m.length === 6);
  }

  /**
   * A bridge without a fixed MAC takes its lowest port's, so a port joining or leaving can
   * change it, and the servers then send to the new one. Each program is replaced by one
   * for the current MACs when they change (checked every XDP_MAC_WATCH_MS); until then
   * those frames take the TUN path, as without --xdp.
   */
  private followBridgeMacs(): void {
    for (const p of this.xdpPrograms) {
      try {
        const macs = this.xdpMacs(this.nl!.link(p.ifindex).address, p.master);
        const hex = macHex(macs);
        if (hex === p.macs) continue;
        retargetXdp(p.att, p.name, macs, this.xdpMaps!, this.opts.xdpForward);
        this.log(`xdp hand-off on ${p.name} now takes frames to ${hex} (was ${p.macs})`);
        p.macs = hex;
      } catch (e) {
        this.log(`xdp hand-off on ${p.name}: cannot follow its MACs (${(e as Error).message})`);
      }
    }
  }

  /** Where the bulk offload's program is, for doctor and the log: "lbc, br0, lbr1 (port of br0)". */
  private bulkOffloadPlaces(): string {
    const ports = [...this.portTc.keys()].sort().map((port) => `${port} (port of ${this.portTc.get(port)!.bridge})`);
    return [...this.xdpPrograms.map((p) => p.name), ...ports].join(", ");
  }

  /**
   * The bulk offload on a bridge's ports follows its membership (checked every
   * XDP_MAC_WATCH_MS): a port that joins a bridge named in --xdp gets the tc program, one
   * that leaves (or is deleted) loses it, and one re-created under the same name gets a new
   * one. Until a new port has it, a transfer's frames from there take the bridge's path.
   */
  private followBridgePorts(): void {
    const maps = this.offloadMaps;
    if (maps === null) return;
    const names = this.xdpPrograms.map((p) => p.name);
    const seen = new Set<string>();
    let changed = false;
    for (const bridge of names) {
      for (const port of bridgePorts(bridge)) {
        if (names.includes(port)) continue;
        seen.add(port);
        let ifindex = 0;
        try {
          ifindex = this.nl!.link(port).index;
          const had = this.portTc.get(port);
          if (had !== undefined && had.ifindex === ifindex && had.bridge === bridge) continue;
          if (this.portTcFailed.get(port) === ifindex) continue;
          if (had !== undefined) close(had.link);
          this.portTc.delete(port);
          changed = true;
          this.portTc.set(port, { ifindex, bridge, link: attachTcOffload(ifindex, port, maps) });
          this.portTcFailed.delete(port);
          this.log(`bulk offload on ${port} (port of ${bridge})`);
        } catch (e) {
          // Gone between the listing and the lookup (ifindex 0): the next round sees.
          if (ifindex !== 0) this.portTcFailed.set(port, ifindex);
          this.log(`bulk offload on ${port} (port of ${bridge}): ${(e as Error).message}; its transfers take the bridge's path`);
        }
      }
    }
    for (const port of this.portTcFailed.keys()) if (!seen.has(port)) this.portTcFailed.delete(port);
    for (const [port, t] of this.portTc) {
      if (seen.has(port)) continue;
      close(t.link);
      this.portTc.delete(port);
      changed = true;
      this.log(`bulk offload off ${port} (left ${t.bridge})`);
    }
    if (changed) this.bulkOffload = `on (${this.bulkOffloadPlaces()})`;
  }

  /** The steal map follows the rules; a failure only leaves frames to the TUN path, so it is logged, not fatal. */
  private syncSteal(rules: RuleSet): void {
    try {
      this.steal?.sync(rules);
    } catch (e) {
      this.log(`xdp hand-off: ${(e as Error).message}; the rest goes through the TUN`);
    }
  }

  /**
   * A raw ICMP socket: the data plane reads copies of the host's ICMP, to act on
   * "fragmentation needed" about its own tunnel packets (IPVS does this in the kernel).
   */
  private openIcmp(af: 4 | 6): number {
    try {
      const sock = openRaw(af, af === 4 ? 1 : 58);
      this.icmp.push(sock);
      return sock.fd;
    } catch (e) {
      this.log(`no raw ICMP socket for IPv${af} (${(e as Error).message}): path MTU changes inside tunnels will not reach clients`);
      return -1;
    }
  }

  /** Requests run one at a time, in arrival order: apply is async (it waits for the worker). */
  private queue: Promise<unknown> = Promise.resolve();
  handle(req: Request): Promise<Reply> {
    return this.enqueue(() => this.handleOne(req));
  }

  /** Runs `job` after every request and job queued before it (rule changes never interleave). */
  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async handleOne(req: Request): Promise<Reply> {
    try {
      switch (req.op) {
        case "ping": return { ok: true, data: { pid: process.pid } };
        case "status": return { ok: true, data: this.status() };
        // Only the CLI's two sources: the value becomes a metrics label.
        case "apply": await this.apply(req.cmds, req.source === "restore" ? "restore" : "cli"); return { ok: true };
        case "restore": await this.restore(req.text, req.prog, req.names); return { ok: true };
        case "zero": this.zeroCounters(req.key); return { ok: true };
        case "list": return { ok: true, data: listText(this.listReply(), req.opts, namesOf(req.names)) };
        case "save": return { ok: true, data: formatSave(this.rules, req.numeric, namesOf(req.names)) };
        case "rules": return { ok: true, data: this.rules };
        case "conns": return { ok: true, data: this.connViews() };
        case "laddrs": return { ok: true, data: this.laddrReply() };
        case "drops": return { ok: true, data: this.dropCounts() };
        case "shutdown": setTimeout(() => void this.shutdown(0), 10); return { ok: true, data: { pid: process.pid } };
        default: return { ok: false, code: "EINVAL", message: "unknown request", exit: 255 };
      }
    } catch (e) {
      if (e instanceof IpvsError) return { ok: false, code: e.code, message: e.message, exit: e.exit, ...(e.line !== undefined ? { line: e.line } : {}) };
      this.log(`request ${req.op} failed: ${(e as Error).stack ?? e}`);
      const msg = e instanceof SysError ? e.message : String((e as Error).message ?? e);
      return { ok: false, code: "EIO", message: msg, exit: 255 };
    }
  }

  /**
   * All-or-nothing: applyShared is pure (the running rules are never changed in place, so
   * the result may share what a command leaves alone), and the kernel side is rolled back
   * if it fails half-way.
   */
  private async apply(cmds: Command[], source = "cli"): Promise<void> {
    await this.counted(source, () => this.applyRules(applyShared(this.rules, cmds, SCHEDULER_NAMES), cmds.length, source));
  }

  /** Runs a rule-change batch and counts it by source and result (tslb_rule_applies_total). */
  private async counted(source: string, job: () => Promise<void>): Promise<void> {
    try {
      await job();
      this.count(source, "ok");
    } catch (e) {
      this.count(source, "error");
      throw e;
    }
  }

  private count(source: string, result: "ok" | "error"): void {
    this.applies[`${source}|${result}`] = (this.applies[`${source}|${result}`] ?? 0) + 1;
  }

  /**
   * -R from the CLI: every line parsed and applied to a copy of the running rules, in
   * order, so the first bad line is named (its IpvsError carries the line); then the
   * result is installed all or nothing. A text with no commands changes nothing and is
   * no batch (the CLI used to send none).
   */
  private async restore(text: string, prog: string, names: NameFiles): Promise<void> {
    let plan: { cmds: Command[]; after: RuleSet };
    try {
      plan = planRestore(this.rules, text, SCHEDULER_NAMES, prog, namesOf(names));
    } catch (e) {
      this.count("restore", "error");
      throw e;
    }
    if (plan.cmds.length > 0) await this.counted("restore", () => this.applyRules(plan.after, plan.cmds.length, "restore"));
  }

  /**
   * Installs `next` (already checked by applyAll or planRestore): mark devices, ids, the
   * data plane's snapshot, then the kernel's routes and rules. The worker builds its
   * tables from the snapshot on the other core while the kernel takes the routes (each
   * a tenth of a second or more at 100 000 destinations). Until the routes are in, all
   * of it can be taken back: a change the kernel refuses leaves the rules, the ids (so
   * every counter and connection) and the data plane as they were.
   */
  private async applyRules(next: RuleSet, commands: number, source: string): Promise<void> {
    const before = this.rules;
    if (!this.ipv6Enabled && next.services.some((s) => s.key.af === 6 || s.dests.some((d) => d.af === 6))) this.enableIpv6();
    const net = this.net!;
    const marks = this.marks!;
    // Mark devices first: the snapshot names their descriptors.
    try {
      marks.sync(MarkDevices.wanted(next));
    } catch (e) {
      marks.sync(MarkDevices.wanted(before));
      throw e;
    }
    const st = this.host.table.destState;
    const fresh = new Uint8Array(MAX_DEST);
    try {
      this.ids.sync(next, (kind, id) => {
        this.resetZero(kind === "svc" ? svcBase(id) : destBase(id));
        if (kind !== "dest") return;
        // A reused id starts clean: no overload flag, no thresholds from its previous owner.
        for (let k = id * DS_STRIDE + DS_FLAGS; k < (id + 1) * DS_STRIDE; k++) st[k] = 0;
        fresh[id] = 1;
      });
    } catch (e) {
      this.ids.undo();
      marks.sync(MarkDevices.wanted(before));
      throw e;
    }
    // New destinations have their thresholds before the data plane sees them; the others
    // get changed ones once the change stands.
    this.setThresholds(next, (id) => fresh[id] === 1);
    this.gen++;
    let adopted: Promise<void>;
    try {
      adopted = this.host.post(compile(next, this.ids, this.gen, this.compileContext(next)));
    } catch (e) {
      this.ids.undo();
      marks.sync(MarkDevices.wanted(before));
      throw e;
    }
    try {
      net.apply(planNetwork(next, this.localAddrs()));
    } catch (e) {
      // Back to `before`: the ids first (that cannot fail), the kernel, then the data plane.
      this.ids.undo();
      try {
        net.apply(planNetwork(before, this.localAddrs()));
        marks.sync(MarkDevices.wanted(before));
      } finally {
        await adopted.catch(() => undefined);
        this.gen++;
        await this.host.post(compile(before, this.ids, this.gen, this.compileContext(before)));
      }
      throw e;
    }
    this.ids.keep();
    this.setThresholds(next, (id) => fresh[id] === 0);
    this.rules = next;
    this.syncSteal(next);
    await adopted;
    marks.closeStale();
    this.health?.sync(next);
    const summary = changeSummary(before, next);
    this.log.event("rules", `${source}: ${summary}`, { source, commands, summary });
    this.saveState();
  }

  /** The thresholds of the destinations of `rules` (just synced) whose id `which` picks. */
  private setThresholds(rules: RuleSet, which: (id: number) => boolean): void {
    const st = this.host.table.destState;
    const destIds = this.ids.destIds;
    let j = 0;
    for (const s of rules.services) {
      for (const d of s.dests) {
        const id = destIds[j++];
        if (which(id)) destSetThresholds(st, id, d.uThreshold, d.lThreshold);
      }
    }
  }

  /** Everything besides the rules that the data plane's snapshot depends on. */
  private compileContext(rules: RuleSet): CompileContext {
    return {
      sysctl: this.opts.sysctl, markDevs: this.marks?.devices() ?? [], down: this.health?.down(),
      tunnelOf: this.tunnelRoutes(), pins: this.health?.assign(rules) ?? [],
      localOf: this.localAddrs(), fullnatPorts: this.opts.fullnatPorts,
    };
  }

  /** Full NAT without --laddr: the source address the kernel would use toward the real server (`quiet`: no log line when none). */
  private localAddrs(quiet = false): (d: Dest) => string | null {
    const nl = this.nl!;
    return (d) => {
      const r = nl.routeGet(d.af, d.addr);
      if (!r || r.src === null) {
        if (!quiet) this.log(`no route (or no source address) toward full-NAT destination ${d.addr}: its new connections are dropped`);
        return null;
      }
      return r.src;
    };
  }

  /**
   * For tunnel destinations: the source address the kernel would use toward the real
   * server and the MTU of the interface it would leave by (asked of rtnetlink per compile).
   */
  private tunnelRoutes(): (d: Dest) => TunnelRoute | null {
    const nl = this.nl!;
    return (d) => {
      const r = nl.routeGet(d.af, d.addr);
      if (!r || r.src === null) {
        this.log(`no route (or no source address) toward tunnel destination ${d.addr}: its packets are dropped`);
        return null;
      }
      return { src: r.src, mtu: ifaceMtu(r.oif) };
    };
  }

  /** The compiled rules again, with the health monitor's current availability (queued). */
  private async recompile(): Promise<void> {
    if (this.stopping) return;
    this.gen++;
    await this.host.post(compile(this.rules, this.ids, this.gen, this.compileContext(this.rules)));
  }

  /** --state: the rules after every change, atomically; a failed write is logged (the change stands). */
  private saveState(): void {
    if (!this.opts.state) return;
    try {
      writeAtomic(this.opts.state, stateText(this.rules));
    } catch (e) {
      this.log.event("error", `cannot write the state file ${this.opts.state}: ${(e as Error).message}`);
    }
  }

  /**
   * At start: the state file's rules (what a previous daemon, maybe killed, was running:
   * applying them again adopts the rules and routes it left, which the kernel reports as
   * existing, so nothing is duplicated), then the rules file, which replaces them.
   */
  private async loadAtStart(): Promise<void> {
    const o = this.opts;
    const state = o.state ? readIfExists(o.state) : null;
    if (state !== null) await this.applyText(state, o.state, "state", false);
    if (o.rules) await this.applyText(readFileSync(o.rules, "utf8"), o.rules, "rules", true);
    else if (o.state && state === null) this.saveState();
  }

  /**
   * -R text from a file, all or nothing. `replace`: the file is the whole configuration
   * (services, destinations and timeouts not in it go), applied in one batch so that
   * connections to everything that stays are kept.
   */
  private async applyText(text: string, path: string, source: string, replace: boolean): Promise<void> {
    let plan: { cmds: Command[]; after: RuleSet };
    try {
      // Replacing: planned against no rules and default timeouts, which is what a clear
      // and a --set of the defaults in front of the file's commands made of the running ones.
      plan = planRestore(replace ? emptyRuleSet() : this.rules, text, SCHEDULER_NAMES, "tslb", systemNames());
    } catch (e) {
      const line = e instanceof IpvsError && e.line !== undefined ? `line ${e.line}: ` : "";
      this.count(source, "error");
      throw new Error(`${path}: ${line}${(e as Error).message}`);
    }
    await this.counted(source, () => this.applyRules(plan.after, plan.cmds.length + (replace ? 2 : 0), source));
  }

  /** SIGHUP: the rules file again, atomically; on any error the running rules stay. */
  reload(): Promise<void> {
    return this.enqueue(async () => {
      if (!this.opts.rules) {
        this.log.event("reload", "SIGHUP without --rules: nothing to reload");
        return;
      }
      try {
        await this.applyText(readFileSync(this.opts.rules, "utf8"), this.opts.rules, "reload", true);
      } catch (e) {
        this.log.event("error", `reload failed, the running rules stay: ${(e as Error).message}`);
      }
    });
  }

  /** Logs once per period in which new connections were dropped: the table was full, or a full-NAT port pool. */
  private watchTable(): void {
    const n = sumCounter(this.host.counterBlocks, DROP_BASE + DROP.TABLE_FULL);
    if (n > this.tableFullSeen) {
      const t = this.host.table;
      this.log.event("table_full", `connection table full (${t.count} of ${t.capacity} entries): ${n - this.tableFullSeen} new connections dropped in the last ${TABLE_WATCH_MS / 1000} s`,
        { dropped: n - this.tableFullSeen, entries: t.count, capacity: t.capacity });
    }
    this.tableFullSeen = n;
    const np = sumCounter(this.host.counterBlocks, DROP_BASE + DROP.FULLNAT_NO_PORT);
    if (np > this.noPortSeen) {
      const [lo, hi] = this.opts.fullnatPorts;
      this.log.event("fullnat_no_port", `full NAT: ${np - this.noPortSeen} new connections refused in the last ${TABLE_WATCH_MS / 1000} s: every local port (${lo}-${hi}) toward their real server was in use; add local addresses (--laddr)`,
        { refused: np - this.noPortSeen });
    }
    this.noPortSeen = np;
  }

  /** The /metrics page. */
  private metricsText(): string {
    const b = this.host.counterBlocks;
    const total = (k: number) => {
      let v = 0;
      for (let id = 0; id < MAX_SVC; id++) v += sumCounter(b, svcBase(id) + k);
      return v - this.totalZero[k];
    };
    const drops: Record<string, number> = {};
    DROP_NAMES.forEach((n, i) => { if (i > 0) drops[n] = sumCounter(b, DROP_BASE + i); });
    return formatMetrics({
      totals: { conns: total(K_CONNS), inpkts: total(K_INPKTS), outpkts: total(K_OUTPKTS), inbytes: total(K_INBYTES), outbytes: total(K_OUTBYTES) },
      services: this.listReply().services,
      drops,
      conntrack: { entries: this.host.table.count, capacity: this.host.table.capacity },
      workers: b.map((w) => Object.fromEntries(MISC_NAMES.map((n, i) => [n, w[MISC_BASE + i]])) as WorkerPackets),
      applies: this.applies,
      startTimeSec: this.startTimeSec,
    });
  }

  private ipv6Enabled = false;
  /** The first IPv6 service: the kernel must forward IPv6 (and answer NDP for VIPs with --vip-dev). */
  private enableIpv6(): void {
    if (this.ipv6Enabled) return;
    if (sysctlRead("net/ipv6/conf/all/forwarding").trim() !== "1") {
      sysctlWrite("net/ipv6/conf/all/forwarding", "1");
      this.log("enabled net.ipv6.conf.all.forwarding (the kernel forwards what tslb writes into the TUN)");
    }
    if (this.opts.vipDev) sysctlWrite(`net/ipv6/conf/${this.opts.vipDev}/proxy_ndp`, "1");
    this.ipv6Enabled = true;
  }

  private resetZero(base: number): void {
    const b = this.host.counterBlocks;
    const z = this.zero;
    for (let k = 0; k < STATS_WIDTH; k++) z[base + k] = sumCounter(b, base + k);
    this.rates.resetTotals(rateKey(base), z, base);
  }

  /** One 2-second sample of the rate estimator: every service and destination of the rules. */
  private sampleRates(): void {
    const { svcIds, destIds } = this.ids;
    const keys = new Int32Array(svcIds.length + destIds.length);
    for (let i = 0; i < svcIds.length; i++) keys[i] = rateKey(svcBase(svcIds[i]));
    for (let i = 0; i < destIds.length; i++) keys[svcIds.length + i] = rateKey(destBase(destIds[i]));
    const blocks = this.host.counterBlocks;
    this.rates.sampleInto(keys, (key, out) => {
      const base = key * STATS_WIDTH;
      out.fill(0);
      for (const b of blocks) for (let k = 0; k < STATS_WIDTH; k++) out[k] += b[base + k];
    });
  }

  private zeroCounters(key?: ServiceKey): void {
    if (key && !this.rules.services.some((s) => sameServiceKey(s.key, key))) throw opError("ESRCH", MSG.NO_SUCH_SERVICE);
    if (!key) {
      // A -Z of everything zeroes IPVS's global totals too (ip_vs_zero_all).
      this.totalZero.fill(0);
      for (let id = 0; id < MAX_SVC; id++) for (let k = 0; k < STATS_WIDTH; k++) this.totalZero[k] += sumCounter(this.host.counterBlocks, svcBase(id) + k);
    }
    const { svcIds, destIds, destStart } = this.ids;
    this.rules.services.forEach((s, si) => {
      if (key && !sameServiceKey(s.key, key)) return;
      this.resetZero(svcBase(svcIds[si]));
      for (let j = destStart[si]; j < destStart[si + 1]; j++) this.resetZero(destBase(destIds[j]));
    });
  }

  /** The rules with their counters, rates, connection counts and health: what -L and /metrics show. */
  private listReply(): ListReply {
    const st = this.host.table.destState;
    const { svcIds, destIds } = this.ids;
    let j = 0;
    const services = this.rules.services.map((s, si): ServiceView => {
      const base = svcBase(svcIds[si]);
      const dests = s.dests.map((d): DestView => {
        const id = destIds[j++];
        const b = id * DS_STRIDE;
        const v: DestView = {
          ...d, activeConns: st[b + DS_ACTIVE], inactConns: st[b + DS_INACTIVE], persistConns: st[b + DS_PERSIST],
          stats: this.stats(destBase(id)), rate: this.rates.rate(rateKey(destBase(id))),
        };
        // Only a checked destination has a health view: no key text for the others.
        const health = d.check ? this.health?.view(RuleIds.destKey(serviceKeyText(s.key), d)) : undefined;
        if (health) v.health = health;
        return v;
      });
      return { ...s, stats: this.stats(base), rate: this.rates.rate(rateKey(base)), dests };
    });
    return { size: 4096, timeouts: this.rules.timeouts, services };
  }

  /** Counters since the last -Z (or since the object got its id). */
  private stats(base: number): Stats {
    const b = this.host.counterBlocks;
    const z = this.zero;
    return {
      conns: sumCounter(b, base + K_CONNS) - z[base + K_CONNS], inpkts: sumCounter(b, base + K_INPKTS) - z[base + K_INPKTS],
      outpkts: sumCounter(b, base + K_OUTPKTS) - z[base + K_OUTPKTS], inbytes: sumCounter(b, base + K_INBYTES) - z[base + K_INBYTES],
      outbytes: sumCounter(b, base + K_OUTBYTES) - z[base + K_OUTBYTES],
    };
  }

  private status(): StatusReply {
    const o = this.opts;
    return {
      pid: process.pid, socket: o.socket, tun: this.tun?.name ?? o.tun, tap: this.tap?.name ?? o.tap, bridge: o.bridge,
      vipDev: o.vipDev, connections: this.host.table.count, connMax: this.host.table.capacity,
      workers: 1 + this.queues.length, offload: this.tun?.vnet ?? false, rps: this.rps,
      xdp: this.xdpModes, xdpKeys: this.steal?.size ?? 0, xdpForward: this.opts.xdpForward,
      bulkOffload: this.bulkOffload,
    };
  }

  private connViews(): ConnView[] {
    const t = this.host.table;
    const now = t.now;
    const out: ConnView[] = [];
    const addr = (id: number, which: number) => entryAddr(t, id, which);
    for (let id = 0; id < t.capacity && out.length < t.count; id++) {
      if (!t.inUse(id) || t.expires(id) <= now) continue;
      const fnat = isFullNat(t, id) ? { laddr: addr(id, 3), lport: t.lport(id) } : {};
      out.push({
        proto: PROTO_NAME[t.proto(id)] ?? `IP_${t.proto(id)}`,
        expireSec: t.expires(id) - now,
        state: STATE_NAMES[t.state(id)],
        af: t.af(id) === 6 ? 6 : 4,
        caddr: addr(id, 0), cport: t.cport(id),
        vaddr: addr(id, 1), vport: t.vport(id),
        daddr: addr(id, 2), dport: t.dport(id),
        ...fnat,
      });
    }
    return out;
  }

  /**
   * -L --laddr: per full-NAT destination, its local addresses and how many pool ports
   * each holds — the live full-NAT entries of that (local address, destination), less
   * finished TCP ones (TIME_WAIT, CLOSE), whose port the data plane takes back on demand.
   */
  private laddrReply(): LaddrReply {
    const t = this.host.table;
    const now = t.now;
    /** "destId|laddr" -> ports held. */
    const held = new Map<string, number>();
    for (let id = 0, seen = 0; id < t.capacity && seen < t.count; id++) {
      if (!t.inUse(id)) continue;
      seen++;
      if (t.expires(id) <= now || !isFullNat(t, id)) continue;
      const st = t.state(id);
      if (t.proto(id) === 6 && (st === S_TIME_WAIT || st === S_CLOSE)) continue;
      const k = `${t.dest(id)}|${entryAddr(t, id, 3)}`;
      held.set(k, (held.get(k) ?? 0) + 1);
    }
    const localOf = this.localAddrs(true);
    const services: LaddrReply["services"] = [];
    for (const s of this.rules.services) {
      const sk = serviceKeyText(s.key);
      const dests = s.dests.filter((d) => d.fwd === "fullnat").map((d) => {
        const prefix = `${this.ids.destId(RuleIds.destKey(sk, d))}|`;
        const laddrs = fullNatLocals(s, d, localOf).map((a) => ({ addr: a, inUse: held.get(prefix + a) ?? 0, configured: true }));
        for (const [k, n] of held) {
          const a = k.slice(prefix.length);
          if (k.startsWith(prefix) && !laddrs.some((l) => l.addr === a)) laddrs.push({ addr: a, inUse: n, configured: false });
        }
        return { af: d.af, addr: d.addr, port: d.port, laddrs };
      });
      services.push({ key: s.key, dests });
    }
    return { ports: [this.opts.fullnatPorts[0], this.opts.fullnatPorts[1]], services };
  }

  private dropCounts(): Record<string, number> {
    const b = this.host.counterBlocks;
    const out: Record<string, number> = {};
    DROP_NAMES.forEach((n, i) => { if (i > 0) out[n] = sumCounter(b, DROP_BASE + i); });
    MISC_NAMES.forEach((n, i) => { out[n] = sumCounter(b, MISC_BASE + i); });
    out.connections = this.host.table.count;
    return out;
  }

  async shutdown(code: number): Promise<never> {
    if (!this.stopping) {
      this.stopping = true;
      this.stopServer?.();
      if (this.rateTimer) clearInterval(this.rateTimer);
      if (this.opsTimer) clearInterval(this.opsTimer);
      if (this.xdpTimer) clearInterval(this.xdpTimer);
      this.metrics?.stop();
      this.health?.stop();
      await this.host.stop().catch(() => undefined);
      this.marks?.teardown();
      this.net?.teardown();
      this.nl?.close();
      for (const q of this.queues) q.close();
      this.tun?.close();
      this.tap?.close();
      for (const s of this.icmp) s.close();
      // Closing the links takes the XDP programs off the interfaces.
      for (const fd of this.xdpFds) close(fd);
      for (const t of this.portTc.values()) close(t.link);
      this.log.event("stop", `stopped (exit ${code}); devices, routes and rules removed`, { code });
    }
    process.exit(code);
  }
}

/**
 * Runs the daemon in this process until it is told to stop. SIGTERM and SIGINT stop it
 * cleanly (exit 0); SIGHUP reloads the rules file. Exit 1: it could not start (devices,
 * a bad state or rules file, the metrics address taken), with everything undone.
 */
export async function runDaemon(opts: GlobalOptions): Promise<void> {
  const log = makeLogger({ json: opts.logJson });
  const dir = dirname(opts.socket);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const d = new Daemon(opts, log);
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => void d.shutdown(0));
  process.on("SIGHUP", () => void d.reload());
  try {
    await d.start();
  } catch (e) {
    log.event("error", `cannot start: ${(e as Error).message}`);
    await d.shutdown(1);
  }
  log.event("start", `ready (socket ${opts.socket}, tun ${opts.tun}${opts.vipDev ? `, vip-dev ${opts.vipDev}` : ""}` +
    `${opts.state ? `, state ${opts.state}` : ""}${opts.rules ? `, rules ${opts.rules}` : ""}, pid ${process.pid})`, { pid: process.pid });
}

/** The rate estimator's key of a stats slot (its counter base / STATS_WIDTH). */
const rateKey = (base: number) => base / STATS_WIDTH;

/** Names for formatting or parsing on a client's behalf: its files when it sent them, else none (numeric). */
function namesOf(files: NameFiles | undefined): Names {
  return files ? lazyNames(() => files) : NO_NAMES;
}

/** A full-NAT connection (not a persistence template, which carries no forwarding method). */
function isFullNat(t: ConnTable, id: number): boolean {
  const f = t.flags(id);
  return (f & F_TEMPLATE) === 0 && ((f >> FWD_SHIFT) & 3) === FWD_FULLNAT;
}

/** Address `which` of entry `id` (0 client, 1 virtual, 2 destination, 3 reply-local) in canonical text. */
function entryAddr(t: ConnTable, id: number, which: number): string {
  if (t.af(id) === 4) return formatIPv4(t.addrWord(id, which, 0));
  return formatIPv6([0, 1, 2, 3].map((w) => t.addrWord(id, which, w)));
}

/** The trimmed contents of the first of `paths` that can be read ("" when none). */
function readFirst(...paths: string[]): string {
  for (const p of paths) {
    try { return readFileSync(p, "utf8").trim(); } catch { /* next */ }
  }
  return "";
}

/** The ports of bridge `dev` (none when it is not a bridge). */
function bridgePorts(dev: string): string[] {
  try {
    return readdirSync(`/sys/class/net/${dev}/brif`).sort();
  } catch {
    return [];
  }
}

/** MTU of the interface with index `ifindex` (1500 when it cannot be read). */
function ifaceMtu(ifindex: number): number {
  try {
    for (const name of readdirSync("/sys/class/net")) {
      if (Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8")) === ifindex) return Number(readFileSync(`/sys/class/net/${name}/mtu`, "utf8"));
    }
  } catch {
    // fall through
  }
  return 1500;
}

/** The reverse-path filter the kernel applies to frames arriving on `dev`: max(all, dev). */
function rpFilter(dev: string): number {
  const read = (d: string) => {
    try {
      return Number(sysctlRead(`net/ipv4/conf/${d}/rp_filter`).trim()) || 0;
    } catch {
      return 0;
    }
  };
  return Math.max(read("all"), read(dev));
}
