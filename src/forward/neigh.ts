// Direct routing's view of the Ethernet segment (tslb is an L2 host on the bridge): its
// own MAC, answers to ARP requests for DR VIPs, gratuitous ARP for new VIPs, and the
// MACs of real servers, resolved with ARP probes (sender 0.0.0.0, RFC 5227, so tslb needs
// no address of its own) and kept in a small cache with expiry and retries. While a real
// server is being resolved its packets wait in a short per-neighbour queue.
// Per-packet work (lookup, header writes) allocates nothing; a new neighbour claims a
// preallocated slot.
import type { Device } from "../io/device.ts";
import { ARP_REPLY, ARP_REQUEST, ARP_SHA, arpOp, arpSpa, arpTpa, arpWrite } from "../wire/arp.ts";
import { ETHERTYPE_ARP, ETH_HDR_LEN, ethWrite, macHi, macLo } from "../wire/ethernet.ts";
import { Frame } from "../wire/frame.ts";

/** Neighbours kept (real servers on the segment). */
const SLOTS = 1024;
/** Frames queued per neighbour while it is resolved (Linux: unres_qlen ~ 101 packets; a handful is enough for SYNs). */
const QUEUE = 4;
const QUEUE_FRAME = 2048;
/** A resolved MAC is trusted this long, then re-probed on next use (Linux base_reachable_time ~30 s). */
const REACHABLE_MS = 30_000;
const RETRY_MS = 1000;
const MAX_PROBES = 3;

const ST_EMPTY = 0;
const ST_INCOMPLETE = 1;
const ST_REACHABLE = 2;
const ST_FAILED = 3;
const BCAST_HI = 0xffff;
const BCAST_LO = -1;

export class L2Host {
  private readonly ip = new Int32Array(SLOTS);
  private readonly state = new Uint8Array(SLOTS);
  private readonly hi = new Int32Array(SLOTS);
  private readonly lo = new Int32Array(SLOTS);
  private readonly until = new Float64Array(SLOTS);
  private readonly probes = new Uint8Array(SLOTS);
  private readonly qlen = new Uint8Array(SLOTS);
  private readonly qsize = new Uint16Array(SLOTS * QUEUE);
  private readonly queue = new Uint8Array(SLOTS * QUEUE * QUEUE_FRAME);
  private readonly scratch = Frame.alloc(64);
  private readonly qdv = new DataView(this.queue.buffer);
  /** Frames sent (ARP requests, replies, flushed queues) and drops, for counters. */
  arpSent = 0;
  queueDrops = 0;

  constructor(readonly dev: Device, readonly macHi: number, readonly macLo: number) {}

  private slot(ip: number): number {
    let i = (Math.imul(ip, 0x9e3779b1) >>> 22) & (SLOTS - 1);
    for (let n = 0; n < SLOTS; n++) {
      if (this.state[i] === ST_EMPTY || this.ip[i] === ip) return i;
      i = (i + 1) & (SLOTS - 1);
    }
    return -1;
  }

  /**
   * Writes the Ethernet header for `ip` in front of the IP packet at f[start, start+len)
   * (start >= 14) and returns the frame start, or -1 when the MAC is not known yet: then
   * the frame is queued (if room) and a probe goes out; the caller sends nothing.
   */
  resolve(f: Frame, start: number, len: number, ip: number, ethType: number, nowMs: number): number {
    const i = this.slot(ip);
    if (i < 0) { this.queueDrops++; return -1; }
    if (this.state[i] === ST_REACHABLE && this.until[i] > nowMs) {
      const o = start - ETH_HDR_LEN;
      ethWrite(f.dv, o, this.hi[i], this.lo[i], this.macHi, this.macLo, ethType);
      return o;
    }
    if (this.state[i] !== ST_INCOMPLETE) {
      this.ip[i] = ip;
      this.state[i] = ST_INCOMPLETE;
      this.probes[i] = 0;
      this.until[i] = 0;
      this.qlen[i] = 0;
    }
    this.enqueue(i, f, start, len, ethType);
    if (this.until[i] <= nowMs) this.probe(i, nowMs);
    return -1;
  }

  private enqueue(i: number, f: Frame, start: number, len: number, ethType: number): void {
    const n = this.qlen[i];
    if (n >= QUEUE || len + ETH_HDR_LEN > QUEUE_FRAME) { this.queueDrops++; return; }
    const q = i * QUEUE + n;
    const dst = q * QUEUE_FRAME + ETH_HDR_LEN;
    const src = f.u8;
    for (let k = 0; k < len; k++) this.queue[dst + k] = src[start + k];
    // The Ethernet type is kept in the queued frame's header now; the MACs come at flush.
    this.queue[q * QUEUE_FRAME + 12] = ethType >> 8;
    this.queue[q * QUEUE_FRAME + 13] = ethType & 0xff;
    this.qsize[q] = len + ETH_HDR_LEN;
    this.qlen[i] = n + 1;
  }

  private probe(i: number, nowMs: number): void {
    if (this.probes[i] >= MAX_PROBES) {
      this.state[i] = ST_FAILED;
      this.queueDrops += this.qlen[i];
      this.qlen[i] = 0;
      this.until[i] = nowMs + RETRY_MS;
      return;
    }
    this.probes[i]++;
    this.until[i] = nowMs + RETRY_MS;
    this.sendArp(ARP_REQUEST, BCAST_HI, BCAST_LO, 0, 0, 0, this.ip[i]);
  }

  /** Re-sends probes whose retry time passed; drops the queues of neighbours that never answered. Once per batch. */
  tick(nowMs: number): void {
    for (let i = 0; i < SLOTS; i++) if (this.state[i] === ST_INCOMPLETE && this.until[i] <= nowMs) this.probe(i, nowMs);
  }

  /**
   * An ARP packet at `o` (checked) arrived: learns the sender's MAC when it is a
   * neighbour being resolved (and flushes its queue), and answers requests for `isVip`
   * addresses with tslb's MAC.
   */
  onArp(f: Frame, o: number, isVip: (ip: number) => boolean, nowMs: number): void {
    const dv = f.dv;
    const spa = arpSpa(dv, o);
    const i = spa !== 0 ? this.slot(spa) : -1;
    if (i >= 0 && this.state[i] !== ST_EMPTY && this.ip[i] === spa) {
      this.hi[i] = macHi(dv, o + ARP_SHA);
      this.lo[i] = macLo(dv, o + ARP_SHA);
      this.state[i] = ST_REACHABLE;
      this.until[i] = nowMs + REACHABLE_MS;
      this.flush(i);
    }
    const tpa = arpTpa(dv, o);
    if (arpOp(dv, o) === ARP_REQUEST && isVip(tpa)) {
      const hi = macHi(dv, o + ARP_SHA);
      const lo = macLo(dv, o + ARP_SHA);
      this.sendArp(ARP_REPLY, hi, lo, tpa, hi, lo, spa);
    }
  }

  /** Gratuitous ARP announcing `vip` at tslb's MAC (a new DR VIP). */
  announce(vip: number): void {
    this.sendArp(ARP_REQUEST, BCAST_HI, BCAST_LO, vip, 0, 0, vip);
  }

  private flush(i: number): void {
    const u8 = this.queue;
    const dv = this.qdv;
    for (let k = 0; k < this.qlen[i]; k++) {
      const q = i * QUEUE + k;
      const o = q * QUEUE_FRAME;
      const type = (u8[o + 12] << 8) | u8[o + 13];
      ethWrite(dv, o, this.hi[i], this.lo[i], this.macHi, this.macLo, type);
      this.dev.send(u8, o, this.qsize[q]);
    }
    this.qlen[i] = 0;
  }

  /**
   * Sends one ARP frame to Ethernet (dstHi:dstLo), sender tslb's MAC and `spa` (a probe:
   * 0.0.0.0; a reply or an announcement: the VIP), target (thaHi:thaLo, tpa).
   */
  private sendArp(op: number, dstHi: number, dstLo: number, spa: number, thaHi: number, thaLo: number, tpa: number): void {
    const f = this.scratch;
    ethWrite(f.dv, 0, dstHi, dstLo, this.macHi, this.macLo, ETHERTYPE_ARP);
    arpWrite(f.dv, ETH_HDR_LEN, op, this.macHi, this.macLo, spa, thaHi, thaLo, tpa);
    // Minimum Ethernet payload is 46 bytes: pad with zeros.
    f.u8.fill(0, ETH_HDR_LEN + 28, 60);
    this.dev.send(f.u8, 0, 60);
    this.arpSent++;
  }

  /** The resolved MAC of `ip` as text, or "" (diagnostics). */
  macOf(ip: number): string {
    const i = this.slot(ip);
    return i >= 0 && this.state[i] === ST_REACHABLE ? `${this.hi[i]}:${this.lo[i]}` : "";
  }
}
