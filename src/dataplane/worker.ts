// Data-plane worker entry (a Bun Worker; bundled into the binary as its own entry point).
// Owns one queue of the main TUN (worker 0 also the TAP, raw ICMP sockets, mark TUNs and
// the XDP hand-off's sockets, after the devices in each batch: dataplane/xdp_path.ts)
// and runs batches: poll() → up to BATCH packets through the pipeline → budgeted expiry
// sweep, returning to the event loop when the control thread signals, so snapshots are
// adopted between batches. With several workers the pipeline runs under the shared packet
// lock. Allocates only at start and on snapshot.
import { ConnTable, type ConnTableShared } from "../conntrack/table.ts";
import type { Device } from "../io/device.ts";
import { Poller, drainEventFd } from "../io/poller.ts";
import { TunDevice } from "../io/tun.ts";
import { MISC_BASE, M_COALESCED, M_GSO_RX, M_JOINED, M_RX, M_SEGMENTED, M_TX, DROP_BASE } from "../stats/counters.ts";
import { DROP } from "../wire/drop.ts";
import { Frame, HEADROOM, MAX_FRAME } from "../wire/frame.ts";
import { Pipeline } from "./pipeline.ts";
import { PacketLock } from "./lock.ts";
import { COALESCE_SLOTS, COALESCE_SLOT_BYTES, UdpCoalescer } from "./coalesce.ts";
import { IPPROTO_TCP, IPPROTO_UDP } from "../wire/ipv4.ts";
import { TCP_JOIN_SLOTS, TCP_JOIN_SLOT_BYTES, TcpJoiner } from "./join_tcp.ts";
import { shareSchedulerState } from "../sched/shared.ts";
import { ActiveConfig, type Snapshot } from "./snapshot.ts";
import { VERDICT_CONSUMED, VERDICT_DROP, VERDICT_SEGMENT, VERDICT_TX, VERDICT_TX_L2 } from "./verdict.ts";
import {
  VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_TCPV4, VNET_GSO_TCPV6, VNET_HDR_LEN, vnetCsumOffset, vnetCsumStart, vnetFlags,
  vnetGsoSize, vnetGsoType, vnetWriteFor,
} from "../wire/vnet.ts";
import { gsoSegments, tcpGsoSegment } from "../wire/gso.ts";
import type { Pkt } from "../wire/pkt.ts";
import { L2Host } from "../forward/neigh.ts";
import { ETH_HDR_LEN } from "../wire/ethernet.ts";
import { Sock } from "../io/raw.ts";
import { viewMemory } from "../io/libc.ts";
import { XSK_UMEM_BYTES, type XskPort, adoptXsk } from "../io/xsk.ts";
import { XdpPath } from "./xdp_path.ts";
import { FlowOffload, OFFLOAD_SWEEP_MS } from "./flow_offload.ts";
import type { OffloadMaps } from "../io/tc_offload.ts";

declare const self: Worker;

export interface WorkerInit {
  type: "init";
  /** This worker's number (0 reads the TAP, raw ICMP sockets and mark TUNs, and sweeps) and how many there are. */
  index: number;
  workers: number;
  /** This worker's queue of the main TUN. */
  fd: number;
  devName: string;
  /** The main TUN was opened with offloads (IFF_VNET_HDR). */
  offload: boolean;
  /** Join UDP datagrams of a flow into one GSO write (needs offload). */
  coalesce: boolean;
  wakeFd: number;
  table: ConnTableShared;
  counters: SharedArrayBuffer;
  /** [0] newest generation posted, [1 + index] generation this worker adopted. */
  ctl: SharedArrayBuffer;
  /** The packet lock (dataplane/lock.ts), taken when workers > 1. */
  lock: SharedArrayBuffer;
  /** rr/wrr positions (sched/shared.ts), used when workers > 1. */
  sched: SharedArrayBuffer;
  /** Table clock origin: epoch seconds at daemon start. */
  clockBaseSec: number;
  /** The TAP for direct routing and tslb's MAC on it (hi 16 bits, lo 32 bits), if the daemon runs one. */
  tap: { fd: number; name: string; macHi: number; macLo: number } | null;
  /** Raw ICMP / ICMPv6 sockets (copies of what the host receives: errors about tslb's tunnel packets), or -1. */
  icmpFd: number;
  icmp6Fd: number;
  /**
   * The XDP hand-off's sockets and their packet area (--xdp; worker 0 only), or null;
   * `drSegment`: per socket, whether its interface is a port of the DR bridge (--bridge);
   * `join`: the hand-off joins small TCP segments (--coalesce with --xdp-join).
   */
  xdp: { areaAddr: number; areaBytes: number; ports: XskPort[]; drSegment: boolean[]; join: boolean } | null;
  /** The bulk offload's maps and shared hint (--bulk-offload with --xdp; every worker), or null. */
  bulkOffload: { maps: OffloadMaps; hint: SharedArrayBuffer } | null;
  snapshot: Snapshot;
}

export type WorkerMessage = WorkerInit | { type: "snapshot"; snapshot: Snapshot } | { type: "stop" };

/** Packets per batch between yields: bounds snapshot-adoption latency under load. */
const BATCH = 256;
/** Idle poll timeout: the sweep still runs about once a second with no traffic. */
const IDLE_POLL_MS = 1000;
/** Longest stretch in the synchronous loop before the event loop runs (timers, GC hooks). */
const SYNC_SLICE_MS = 50;
/** A full sweep of the table takes about this long, whatever its size. */
const SWEEP_PERIOD_MS = 2000;

let pipeline: Pipeline;
let table: ConnTable;
/** devs[0] is the main TUN (mark 0); then the TAP and the raw ICMP socket, if any; then one TUN per firewall mark. */
let devs: Device[] = [];
let devMarks = new Int32Array(0);
/** What each device carries: IP packets (TUN), Ethernet frames (TAP), host ICMP copies. */
let devKind = new Uint8Array(0);
const KIND_TUN = 0;
const KIND_TAP = 1;
const KIND_ICMP = 2;
const KIND_ICMP6 = 3;
let icmpDev: Device | null = null;
let icmp6Dev: Device | null = null;
let poller: Poller;
let mainDev: TunDevice;
let tapDev: Device | null = null;
let l2: L2Host | null = null;
/** DR VIPs already announced (gratuitous ARP, unsolicited NA), as text keys. */
let announced = new Set<string>();
let wakeFd = -1;
let ctl: Int32Array;
let counters: Float64Array;
let clockBaseSec = 0;
let frame: Frame;
let lastSweepMs = 0;
let stopped = false;
/** This worker's number; 0 owns the single-queue devices and the sweep. */
let index = 0;
/** Taken around the pipeline when several workers share the table; null with one worker. */
let lock: PacketLock | null = null;
/** Entries swept per lock hold (bounds how long other workers wait). */
const SWEEP_SLICE = 4096;
/** The main TUN carries a virtio_net_hdr (offloads on). */
let mainVnet = false;
/** Where segment() cuts segments: past the largest packet a read can return. */
const SEGMENT_AT = HEADROOM + MAX_FRAME + HEADROOM;
/** The coalescer's staging slots, after the segment area. */
const COALESCE_AT = SEGMENT_AT + MAX_FRAME;
/** Joins a flow's UDP datagrams into one write (--coalesce, offloads on); null when off. */
let coalescer: UdpCoalescer | null = null;
/** The TCP joiner's staging slots, after the coalescer's. */
const JOIN_AT = COALESCE_AT + COALESCE_SLOTS * COALESCE_SLOT_BYTES;
/** Joins a flow's back-to-back small TCP segments into one (--coalesce); null when off. */
let joiner: TcpJoiner | null = null;
/** The XDP hand-off (--xdp, worker 0), and its sockets' fds, polled after the devices and the wake fd. */
let xdpPath: XdpPath | null = null;
let xskFds: number[] = [];
/** Frames the hand-off could not send yet: poll without sleeping until they are out. */
let xdpBacklog = false;
/** The bulk offload (--bulk-offload), or null; when it last folded its counts in. */
let flowOffload: FlowOffload | null = null;
let lastOffloadSweepMs = 0;
const lockPipeline = (): void => lock?.lock();
const unlockPipeline = (): void => lock?.unlock();

function readOnlyDevice(sock: Sock): Device {
  return { name: sock.label, fd: sock.fd, l2: false, recv: (b, o, c) => sock.recv(b, o, c), send: () => -1, close: () => sock.close() };
}

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** (Re)builds the device list and the poll set when the snapshot's mark devices change. */
function setDevices(snap: Snapshot): void {
  const fixed: Device[] = [mainDev];
  if (tapDev) fixed.push(tapDev);
  if (icmpDev) fixed.push(icmpDev);
  if (icmp6Dev) fixed.push(icmp6Dev);
  // Mark TUNs have one queue: worker 0 reads them.
  const marks = index === 0 ? snap.markDevs : [];
  const want = marks.map((d) => `${d.fd}/${d.mark}`).join(",");
  const have = devs.slice(fixed.length).map((d, i) => `${d.fd}/${devMarks[i + fixed.length]}`).join(",");
  if (devs.length > 0 && want === have) return;
  devs = [...fixed, ...marks.map((d) => new TunDevice(d.name, d.fd))];
  devMarks = Int32Array.from([...fixed.map(() => 0), ...marks.map((d) => d.mark | 0)]);
  devKind = Uint8Array.from(devs.map((d) => (d === icmpDev ? KIND_ICMP : d === icmp6Dev ? KIND_ICMP6 : d.l2 ? KIND_TAP : KIND_TUN)));
  poller = new Poller([...devs.map((d) => d.fd), wakeFd, ...xskFds]);
}

/** Gratuitous ARP for DR VIPs that are new in this snapshot, so neighbours learn tslb's MAC at once. */
function announce(cfg: ActiveConfig): void {
  if (!l2) return;
  const now = new Set<string>();
  for (const vip of cfg.drVips) {
    now.add(`${vip}`);
    if (!announced.has(`${vip}`)) l2.announce(vip);
  }
  for (const v of cfg.drVips6) {
    now.add(v.join(","));
    if (!announced.has(v.join(","))) l2.announce6(v[0], v[1], v[2], v[3]);
  }
  announced = now;
}

function adopt(snap: Snapshot): void {
  // Schedulers' rebuild may touch state other workers use.
  lock?.lock();
  pipeline.cfg = new ActiveConfig(snap, table.destState, pipeline.cfg);
  lock?.unlock();
  setDevices(snap);
  announce(pipeline.cfg);
  // A removed or failed real server's offloaded connections come back to tslb at once.
  lastOffloadSweepMs = 0;
  Atomics.store(ctl, 1 + index, snap.gen);
  postMessage({ type: "adopted", gen: snap.gen });
}

/** Takes the virtio_net_hdr in front of the packet read at HEADROOM into `p`. */
function readOffload(p: Pkt, u8: Uint8Array, len: number): void {
  const h = HEADROOM - VNET_HDR_LEN;
  const gso = vnetGsoType(u8, h);
  p.gsoType = (gso & ~VNET_GSO_ECN) === VNET_GSO_TCPV4 || (gso & ~VNET_GSO_ECN) === VNET_GSO_TCPV6 ? gso : 0;
  p.gsoSize = vnetGsoSize(u8, h);
  p.csumStart = HEADROOM + vnetCsumStart(u8, h);
  p.csumAt = p.csumStart + vnetCsumOffset(u8, h);
  // Only TCP super-packets were asked for (TUNSETOFFLOAD); a header out of range is ignored.
  p.csumPartial = (vnetFlags(u8, h) & VNET_F_NEEDS_CSUM) !== 0 && p.csumAt + 2 <= HEADROOM + len ? 1 : 0;
  if (p.csumPartial === 0) p.gsoType = 0;
  else if (p.gsoType !== 0) counters[MISC_BASE + M_GSO_RX]++;
}

/**
 * Sends the pipeline's output. IP packets always go to the main TUN: the kernel's
 * reverse-path check then finds the route back (the reply rules point at it), and its
 * own writes are exempt from them. Ethernet frames (direct routing) go to the TAP. An
 * offloading TUN gets the packet's offload state in front.
 */
function emit(v: number): void {
  if (v === VERDICT_DROP || v === VERDICT_CONSUMED) return;
  const p = pipeline.pkt;
  const u8 = frame.u8;
  // Only ordinary packets join, and a partial sum only where every kernel puts it (the
  // NAT paths keep it so).
  const joinable = p.gsoType === 0 && (p.csumPartial === 0 || p.csumAt === p.l4csum);
  // add() refuses what cannot wait (a super-packet, say), after writing its flow's staged segments.
  if (joiner !== null && p.proto === IPPROTO_TCP && (v === VERDICT_TX || v === VERDICT_TX_L2) &&
    joiner.add(v === VERDICT_TX ? 0 : 1, p.start, v === VERDICT_TX ? 0 : ETH_HDR_LEN, p.len, p.csumPartial, joinable)) {
    counters[MISC_BASE + M_TX]++;
    return;
  }
  if (coalescer !== null) {
    if (v === VERDICT_TX && joinable && p.proto === IPPROTO_UDP && coalescer.add(p.start, p.len, p.csumPartial)) {
      counters[MISC_BASE + M_TX]++;
      return;
    }
    // Whatever goes out otherwise must not overtake a flow's staged datagrams.
    coalescer.flush();
  }
  // A super-packet leaving through the TUN keeps its flow's frames from the XDP sockets there too (order).
  if (xdpPath !== null && p.gsoType !== 0) xdpPath.noteBulk(u8, p, pipeline.nowMs);
  let r: number;
  if (v === VERDICT_TX_L2) r = tapDev!.send(u8, p.start, p.len);
  else if (!mainVnet) r = mainDev.send(u8, p.start, p.len);
  else r = mainDev.send(u8, vnetWriteFor(u8, p), p.len + VNET_HDR_LEN);
  if (r < 0) counters[DROP_BASE + DROP.TX_ERROR]++;
  else counters[MISC_BASE + M_TX]++;
}

/**
 * A super-packet whose path cannot carry it (VERDICT_SEGMENT: nothing was done to it
 * yet): each segment is cut into the frame's second half and processed and sent alone.
 */
function segment(now: number, mark: number): void {
  const p = pipeline.pkt;
  const u8 = frame.u8;
  const l3 = p.start;
  const l4 = p.l4;
  const end = p.start + p.len;
  const mss = p.gsoSize;
  const n = gsoSegments(end - l4 - ((u8[l4 + 12] >> 4) << 2), mss);
  counters[MISC_BASE + M_SEGMENTED]++;
  for (let k = 0; k < n; k++) {
    const len = tcpGsoSegment(u8, l3, l4, end, mss, k, SEGMENT_AT);
    p.csumPartial = 0;
    p.gsoType = 0;
    if (lock !== null) lock.lock();
    const v = pipeline.process(frame, SEGMENT_AT, len, now, mark);
    if (lock !== null) lock.unlock();
    emit(v);
  }
}

/** Expires entries, in slices when other workers wait on the lock. */
function sweep(now: number, budget: number): void {
  if (lock === null) table.sweep(now, budget);
  else {
    for (let done = 0; done < budget; done += SWEEP_SLICE) {
      lock.lock();
      table.sweep(now, Math.min(SWEEP_SLICE, budget - done));
      lock.unlock();
    }
  }
  lastSweepMs = nowMs();
}

/**
 * The worker's main loop. It stays in this synchronous loop (poll, then a batch per
 * readable device) and returns to the event loop only when the control thread signals
 * (a snapshot or stop message waits: messages are only delivered there) or every
 * SYNC_SLICE_MS: a setImmediate round trip costs ~1.5 µs, as much as a packet's user-space
 * work, so it is not paid per batch.
 */
function loop(): void {
  if (stopped) return;
  const until = nowMs() + SYNC_SLICE_MS;
  for (;;) {
    const pending = Atomics.load(ctl, 0) !== Atomics.load(ctl, 1 + index);
    // Offloaded connections' frames may all go by the kernel: their sweep keeps its pace.
    poller.wait(pending || xdpBacklog ? 0 : flowOffload !== null && flowOffload.used > 0 ? OFFLOAD_SWEEP_MS : IDLE_POLL_MS);
    const woken = poller.readable(devs.length);
    if (woken) drainEventFd(wakeFd);
    if (batch() > until || woken || pending) break;
  }
  setImmediate(loop);
}

/** One pass over the readable devices (at most BATCH packets each); returns the batch's clock (ms). */
function batch(): number {
  const nd = devs.length;
  const ms = nowMs();
  const now = Math.floor(ms / 1000) - clockBaseSec;
  table.setNow(now);
  pipeline.nowMs = ms;
  if (l2) l2.tick(ms);
  const u8 = frame.u8;
  const cap = MAX_FRAME;
  const p = pipeline.pkt;
  for (let d = 0; d < nd; d++) {
    if (!poller.readable(d)) continue;
    const dev = devs[d];
    const mark = devMarks[d];
    const kind = devKind[d];
    const vnet = d === 0 && mainVnet;
    for (let i = 0; i < BATCH; i++) {
      let len: number;
      if (vnet) {
        len = dev.recv(u8, HEADROOM - VNET_HDR_LEN, MAX_FRAME + VNET_HDR_LEN);
        if (len <= 0) break;
        len -= VNET_HDR_LEN;
        readOffload(p, u8, len);
      } else {
        len = dev.recv(u8, HEADROOM, cap);
        if (len <= 0) break;
        p.csumPartial = 0;
        p.gsoType = 0;
      }
      counters[MISC_BASE + M_RX]++;
      // The lock covers the pipeline only, never a system call (emit writes after it).
      if (lock !== null) lock.lock();
      const v = kind === KIND_TAP ? pipeline.processFrame(frame, HEADROOM, len, now)
        : kind === KIND_ICMP ? pipeline.processHostIcmp(frame, HEADROOM, len, now)
        : kind === KIND_ICMP6 ? pipeline.processHostIcmp6(frame, HEADROOM, len, now)
        : pipeline.process(frame, HEADROOM, len, now, mark);
      if (lock !== null) lock.unlock();
      if (v === VERDICT_SEGMENT) segment(now, mark);
      else emit(v);
    }
  }
  if (coalescer !== null) coalescer.flush();
  if (joiner !== null) joiner.flush();
  if (xdpPath !== null) {
    for (let k = 0; k < xskFds.length; k++) if (poller.readable(nd + 1 + k)) xdpPath.receive(k, now);
    xdpBacklog = xdpPath.flush();
  }
  if (flowOffload !== null) {
    flowOffload.flush(table);
    if (ms - lastOffloadSweepMs >= OFFLOAD_SWEEP_MS) {
      flowOffload.sweep(table, now, pipeline.cfg, lockPipeline, unlockPipeline);
      lastOffloadSweepMs = ms;
    }
  }
  const budget = Math.ceil((table.capacity * (ms - lastSweepMs)) / SWEEP_PERIOD_MS);
  if (index === 0 && budget >= 64) sweep(now, Math.min(budget, table.capacity));
  return ms;
}

self.onmessage = (ev: MessageEvent<WorkerMessage>) => {
  const m = ev.data;
  if (m.type === "init") {
    index = m.index;
    lock = m.workers > 1 ? new PacketLock(m.lock) : null;
    shareSchedulerState(m.workers > 1 ? m.sched : null);
    table = ConnTable.attach(m.table);
    counters = new Float64Array(m.counters);
    ctl = new Int32Array(m.ctl);
    clockBaseSec = m.clockBaseSec;
    // The control thread opened the queue; fds are process-wide, so the worker adopts it.
    mainDev = new TunDevice(m.devName, m.fd);
    mainDev.vnet = m.offload;
    mainVnet = m.offload;
    wakeFd = m.wakeFd;
    if (m.tap) {
      const t = new TunDevice(m.tap.name, m.tap.fd);
      t.l2 = true;
      tapDev = t;
      l2 = new L2Host(t, m.tap.macHi, m.tap.macLo);
    }
    // Read-only: the raw sockets only deliver copies; sends never go through them.
    icmpDev = m.icmpFd >= 0 ? readOnlyDevice(new Sock(m.icmpFd, 4, 1, "raw icmp")) : null;
    icmp6Dev = m.icmp6Fd >= 0 ? readOnlyDevice(new Sock(m.icmp6Fd, 6, 58, "raw icmpv6")) : null;
    if (m.xdp !== null) xskFds = m.xdp.ports.map((p) => p.fd);
    setDevices(m.snapshot);
    // The second half takes the segments of a super-packet (segment()), headroom included.
    frame = Frame.alloc(JOIN_AT + TCP_JOIN_SLOTS * TCP_JOIN_SLOT_BYTES);
    const f = frame;
    const sendMain = (off: number, len: number): number => {
      const r = mainDev.send(f.u8, off, len);
      if (r < 0) counters[DROP_BASE + DROP.TX_ERROR]++;
      return r;
    };
    const sendJoined = (dev: number, off: number, len: number): number => {
      if (dev === 0) return sendMain(off, len);
      const r = tapDev!.send(f.u8, off, len);
      if (r < 0) counters[DROP_BASE + DROP.TX_ERROR]++;
      return r;
    };
    if (m.coalesce) joiner = new TcpJoiner(f.u8, JOIN_AT, m.offload, sendJoined, counters, MISC_BASE + M_JOINED);
    if (m.offload && m.coalesce) coalescer = new UdpCoalescer(f.u8, COALESCE_AT, sendMain, counters, MISC_BASE + M_COALESCED);
    pipeline = new Pipeline(new ActiveConfig(m.snapshot, table.destState, null), table, counters);
    pipeline.l2 = l2;
    if (m.xdp !== null) {
      const area = new Frame(viewMemory(m.xdp.areaAddr, m.xdp.areaBytes));
      xdpPath = new XdpPath(m.xdp.ports.map((port) => adoptXsk(port, area.dv)), area, pipeline, counters, mainDev, mainVnet, tapDev, lock,
        m.xdp.ports.length * XSK_UMEM_BYTES, m.xdp.join, m.xdp.drSegment);
    }
    if (m.bulkOffload !== null) {
      flowOffload = new FlowOffload(m.bulkOffload.maps, new Int32Array(m.bulkOffload.hint), counters);
      pipeline.offload = flowOffload;
    }
    announce(pipeline.cfg);
    lastSweepMs = nowMs();
    Atomics.store(ctl, 1 + index, m.snapshot.gen);
    postMessage({ type: "adopted", gen: m.snapshot.gen });
    loop();
  } else if (m.type === "snapshot") {
    adopt(m.snapshot);
  } else if (m.type === "stop") {
    stopped = true;
    postMessage({ type: "stopped" });
  }
};
