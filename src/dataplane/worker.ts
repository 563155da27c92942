// Data-plane worker entry (a Bun Worker; bundled into the binary as its own entry point).
// Owns one device queue and runs batches: poll() → up to BATCH packets through the
// pipeline → budgeted expiry sweep → setImmediate(next), so snapshots posted by the
// control thread are adopted between batches. Allocates only at start and on snapshot.
import { ConnTable, type ConnTableShared } from "../conntrack/table.ts";
import type { Device } from "../io/device.ts";
import { Poller, drainEventFd } from "../io/poller.ts";
import { TunDevice } from "../io/tun.ts";
import { MISC_BASE, M_RX, M_TX, DROP_BASE } from "../stats/counters.ts";
import { DROP } from "../wire/drop.ts";
import { Frame, HEADROOM, MAX_FRAME } from "../wire/frame.ts";
import { Pipeline } from "./pipeline.ts";
import { ActiveConfig, type Snapshot } from "./snapshot.ts";
import { VERDICT_CONSUMED, VERDICT_DROP, VERDICT_TX_L2 } from "./verdict.ts";
import { L2Host } from "../forward/neigh.ts";
import { Sock } from "../io/raw.ts";

declare const self: Worker;

export interface WorkerInit {
  type: "init";
  fd: number;
  devName: string;
  wakeFd: number;
  table: ConnTableShared;
  counters: SharedArrayBuffer;
  /** [0] newest generation posted, [1] generation adopted. */
  ctl: SharedArrayBuffer;
  /** Table clock origin: epoch seconds at daemon start. */
  clockBaseSec: number;
  /** The TAP for direct routing and tslb's MAC on it (hi 16 bits, lo 32 bits), if the daemon runs one. */
  tap: { fd: number; name: string; macHi: number; macLo: number } | null;
  /** Raw ICMP / ICMPv6 sockets (copies of what the host receives: errors about tslb's tunnel packets), or -1. */
  icmpFd: number;
  icmp6Fd: number;
  snapshot: Snapshot;
}

export type WorkerMessage = WorkerInit | { type: "snapshot"; snapshot: Snapshot } | { type: "stop" };

/** Packets per batch between yields: bounds snapshot-adoption latency under load. */
const BATCH = 256;
/** Idle poll timeout: the sweep still runs about once a second with no traffic. */
const IDLE_POLL_MS = 1000;
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
let mainDev: Device;
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
  const want = snap.markDevs.map((d) => `${d.fd}/${d.mark}`).join(",");
  const have = devs.slice(fixed.length).map((d, i) => `${d.fd}/${devMarks[i + fixed.length]}`).join(",");
  if (devs.length > 0 && want === have) return;
  devs = [...fixed, ...snap.markDevs.map((d) => new TunDevice(d.name, d.fd))];
  devMarks = Int32Array.from([...fixed.map(() => 0), ...snap.markDevs.map((d) => d.mark | 0)]);
  devKind = Uint8Array.from(devs.map((d) => (d === icmpDev ? KIND_ICMP : d === icmp6Dev ? KIND_ICMP6 : d.l2 ? KIND_TAP : KIND_TUN)));
  poller = new Poller([...devs.map((d) => d.fd), wakeFd]);
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
  pipeline.cfg = new ActiveConfig(snap, table.destState, pipeline.cfg);
  setDevices(snap);
  announce(pipeline.cfg);
  Atomics.store(ctl, 1, snap.gen);
  postMessage({ type: "adopted", gen: snap.gen });
}

function loop(): void {
  if (stopped) return;
  const pending = Atomics.load(ctl, 0) !== Atomics.load(ctl, 1);
  poller.wait(pending ? 0 : IDLE_POLL_MS);
  const nd = devs.length;
  if (poller.readable(nd)) drainEventFd(wakeFd);
  const ms = nowMs();
  const now = Math.floor(ms / 1000) - clockBaseSec;
  table.setNow(now);
  pipeline.nowMs = ms;
  if (l2) l2.tick(ms);
  const u8 = frame.u8;
  const cap = u8.length - HEADROOM;
  const p = pipeline.pkt;
  for (let d = 0; d < nd; d++) {
    if (!poller.readable(d)) continue;
    const dev = devs[d];
    const mark = devMarks[d];
    const kind = devKind[d];
    for (let i = 0; i < BATCH; i++) {
      const len = dev.recv(u8, HEADROOM, cap);
      if (len <= 0) break;
      counters[MISC_BASE + M_RX]++;
      const v = kind === KIND_TAP ? pipeline.processFrame(frame, HEADROOM, len, now)
        : kind === KIND_ICMP ? pipeline.processHostIcmp(frame, HEADROOM, len, now)
        : kind === KIND_ICMP6 ? pipeline.processHostIcmp6(frame, HEADROOM, len, now)
        : pipeline.process(frame, HEADROOM, len, now, mark);
      if (v === VERDICT_DROP || v === VERDICT_CONSUMED) continue;
      // IP packets always go to the main TUN: the kernel's reverse-path check then finds
      // the route back (the reply rules point at it), and its own writes are exempt from
      // them. Ethernet frames (direct routing) go to the TAP.
      const out = v === VERDICT_TX_L2 ? tapDev! : mainDev;
      if (out.send(u8, p.start, p.len) < 0) counters[DROP_BASE + DROP.TX_ERROR]++;
      else counters[MISC_BASE + M_TX]++;
    }
  }
  const budget = Math.ceil((table.capacity * (ms - lastSweepMs)) / SWEEP_PERIOD_MS);
  if (budget >= 64) {
    table.sweep(now, Math.min(budget, table.capacity));
    lastSweepMs = ms;
  }
  setImmediate(loop);
}

self.onmessage = (ev: MessageEvent<WorkerMessage>) => {
  const m = ev.data;
  if (m.type === "init") {
    table = ConnTable.attach(m.table);
    counters = new Float64Array(m.counters);
    ctl = new Int32Array(m.ctl);
    clockBaseSec = m.clockBaseSec;
    // The control thread opened the queue; fds are process-wide, so the worker adopts it.
    mainDev = new TunDevice(m.devName, m.fd);
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
    setDevices(m.snapshot);
    frame = Frame.alloc(HEADROOM + MAX_FRAME);
    pipeline = new Pipeline(new ActiveConfig(m.snapshot, table.destState, null), table, counters);
    pipeline.l2 = l2;
    announce(pipeline.cfg);
    lastSweepMs = nowMs();
    Atomics.store(ctl, 1, m.snapshot.gen);
    postMessage({ type: "adopted", gen: m.snapshot.gen });
    loop();
  } else if (m.type === "snapshot") {
    adopt(m.snapshot);
  } else if (m.type === "stop") {
    stopped = true;
    postMessage({ type: "stopped" });
  }
};
