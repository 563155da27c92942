// Direct routing's view of the Ethernet segment (tslb is an L2 host on the bridge): its
// own MAC; answers to ARP requests and neighbour solicitations for DR VIPs; gratuitous
// ARP / unsolicited NA for new VIPs; and the MACs of real servers, resolved with probes
// that need no address of tslb's own — ARP with sender 0.0.0.0 (RFC 5227) and NS from
// the unspecified address (answered to all-nodes, RFC 4861 §7.2.4) — kept in a small
// cache with expiry and retries. While a real server is resolved its packets wait in a
// short per-neighbour queue. Per-packet work allocates nothing; a new neighbour claims a
// preallocated slot.
import type { Device } from "../io/device.ts";
import { ARP_REPLY, ARP_REQUEST, ARP_SHA, arpOp, arpSpa, arpTpa, arpWrite } from "../wire/arp.ts";
import { csumAdd, csumFold } from "../wire/checksum.ts";
import { ETHERTYPE_ARP, ETHERTYPE_IPV6, ETH_HDR_LEN, ETH_SRC, ethWrite, macHi, macLo } from "../wire/ethernet.ts";
import { Frame } from "../wire/frame.ts";
import { IPV6_DST, IPV6_HDR_LEN, IPV6_SRC } from "../wire/ipv6.ts";
import { NA_OVERRIDE, NA_SOLICITED, NDP_NA, NDP_NS, NDP_OPT_TLLA, NDP_TARGET, ndpFindLla, ndpWriteLla } from "../wire/ndp.ts";

/** Neighbours kept (real servers on the segment). */
const SLOTS = 1024;
/** Frames queued per neighbour while it is resolved (a handful covers a burst of SYNs). */
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
  /** Neighbour address, 4 words per slot (IPv4 in word 0), and its family. */
  private readonly ip = new Int32Array(SLOTS * 4);
  private readonly af = new Uint8Array(SLOTS);
  private readonly state = new Uint8Array(SLOTS);
  private readonly hi = new Int32Array(SLOTS);
  private readonly lo = new Int32Array(SLOTS);
  private readonly until = new Float64Array(SLOTS);
  private readonly probes = new Uint8Array(SLOTS);
  private readonly qlen = new Uint8Array(SLOTS);
  private readonly qsize = new Uint16Array(SLOTS * QUEUE);
  private readonly queue = new Uint8Array(SLOTS * QUEUE * QUEUE_FRAME);
  private readonly qdv = new DataView(this.queue.buffer);
  private readonly scratch = Frame.alloc(128);
  private readonly lla = new Int32Array(2);
  arpSent = 0;
  queueDrops = 0;
  /** Earliest retry time of any neighbour being resolved (Infinity: none), so tick() costs nothing otherwise. */
  private nextDue = Infinity;

  constructor(readonly dev: Device, readonly macHi: number, readonly macLo: number) {}

  private slot(af: number, a0: number, a1: number, a2: number, a3: number): number {
    const h = Math.imul(a0 ^ Math.imul(a1, 31) ^ Math.imul(a2, 961) ^ Math.imul(a3, 29791) ^ af, 0x9e3779b1);
    let i = (h >>> 22) & (SLOTS - 1);
    for (let n = 0; n < SLOTS; n++) {
      if (this.state[i] === ST_EMPTY) return i;
      const b = i * 4;
      if (this.af[i] === af && this.ip[b] === a0 && this.ip[b + 1] === a1 && this.ip[b + 2] === a2 && this.ip[b + 3] === a3) return i;
      i = (i + 1) & (SLOTS - 1);
    }
    return -1;
  }

  /**
   * Writes the Ethernet header for neighbour (af, a0..a3) in front of the IP packet at
   * f[start, start+len) (start >= 14) and returns the frame start, or -1 when the MAC is
   * not known yet: then the packet is queued (if room) and a probe goes out.
   */
  resolve(f: Frame, start: number, len: number, af: number, a0: number, a1: number, a2: number, a3: number, ethType: number, nowMs: number): number {
    const i = this.slot(af, a0, a1, a2, a3);
    if (i < 0) { this.queueDrops++; return -1; }
    if (this.state[i] === ST_REACHABLE && this.until[i] > nowMs) {
      const o = start - ETH_HDR_LEN;
      ethWrite(f.dv, o, this.hi[i], this.lo[i], this.macHi, this.macLo, ethType);
      return o;
    }
    if (this.state[i] !== ST_INCOMPLETE) {
      const b = i * 4;
      this.ip[b] = a0; this.ip[b + 1] = a1; this.ip[b + 2] = a2; this.ip[b + 3] = a3;
      this.af[i] = af;
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
    // The Ethernet type goes in the queued frame's header now; the MACs come at flush.
    this.qdv.setUint16(q * QUEUE_FRAME + 12, ethType);
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
    if (this.until[i] < this.nextDue) this.nextDue = this.until[i];
    const b = i * 4;
    if (this.af[i] === 4) this.sendArp(ARP_REQUEST, BCAST_HI, BCAST_LO, 0, 0, 0, this.ip[b]);
    else this.sendNs(this.ip[b], this.ip[b + 1], this.ip[b + 2], this.ip[b + 3]);
  }

  /** Re-sends probes whose retry time passed; drops the queues of neighbours that never answered. Once per batch. */
  tick(nowMs: number): void {
    if (nowMs < this.nextDue) return;
    this.nextDue = Infinity;
    for (let i = 0; i < SLOTS; i++) {
      if (this.state[i] !== ST_INCOMPLETE) continue;
      if (this.until[i] <= nowMs) this.probe(i, nowMs);
      else if (this.until[i] < this.nextDue) this.nextDue = this.until[i];
    }
  }

  private learn(i: number, hi: number, lo: number, nowMs: number): void {
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.state[i] = ST_REACHABLE;
    this.until[i] = nowMs + REACHABLE_MS;
    this.flush(i);
  }

  /**
   * An ARP packet at `o` (checked) arrived: learns the sender's MAC when it is a
   * neighbour being resolved (and flushes its queue), and answers requests for `isVip`
   * addresses with tslb's MAC.
   */
  onArp(f: Frame, o: number, isVip: (ip: number) => boolean, nowMs: number): void {
    const dv = f.dv;
    const spa = arpSpa(dv, o);
    if (spa !== 0) {
      const i = this.slot(4, spa, 0, 0, 0);
      if (i >= 0 && this.state[i] !== ST_EMPTY) this.learn(i, macHi(dv, o + ARP_SHA), macLo(dv, o + ARP_SHA), nowMs);
    }
    const tpa = arpTpa(dv, o);
    if (arpOp(dv, o) === ARP_REQUEST && isVip(tpa)) {
      const hi = macHi(dv, o + ARP_SHA);
      const lo = macLo(dv, o + ARP_SHA);
      this.sendArp(ARP_REPLY, hi, lo, tpa, hi, lo, spa);
    }
  }

  /**
   * An ICMPv6 neighbour solicitation or advertisement at `icmp` in the IPv6 packet at
   * `ip6` of the Ethernet frame at `eth` (lengths checked by the caller): learns real
   * servers' MACs from advertisements, answers solicitations for `isVip` targets.
   * Returns true when the message was NDP (consumed), false otherwise.
   */
  onNdp(f: Frame, eth: number, ip6: number, icmp: number, end: number, isVip: (a0: number, a1: number, a2: number, a3: number) => boolean, nowMs: number): boolean {
    const dv = f.dv;
    const type = dv.getUint8(icmp);
    if ((type !== NDP_NS && type !== NDP_NA) || icmp + 24 > end) return false;
    const t = icmp + NDP_TARGET;
    const a0 = dv.getInt32(t), a1 = dv.getInt32(t + 4), a2 = dv.getInt32(t + 8), a3 = dv.getInt32(t + 12);
    if (type === NDP_NA) {
      const i = this.slot(6, a0, a1, a2, a3);
      if (i >= 0 && this.state[i] !== ST_EMPTY) {
        const found = ndpFindLla(dv, icmp, end, NDP_OPT_TLLA, this.lla);
        this.learn(i, found ? this.lla[0] : macHi(dv, eth + ETH_SRC), found ? this.lla[1] : macLo(dv, eth + ETH_SRC), nowMs);
      }
      return true;
    }
    if (isVip(a0, a1, a2, a3)) {
      // Answer to the solicitor; a solicitation from :: (DAD) is answered to all-nodes.
      const unspec = (dv.getInt32(ip6 + IPV6_SRC) | dv.getInt32(ip6 + IPV6_SRC + 4) | dv.getInt32(ip6 + IPV6_SRC + 8) | dv.getInt32(ip6 + IPV6_SRC + 12)) === 0;
      this.sendNa(a0, a1, a2, a3, unspec ? -1 : ip6 + IPV6_SRC, f, macHi(dv, eth + ETH_SRC), macLo(dv, eth + ETH_SRC), !unspec);
    }
    return true;
  }

  /** Gratuitous ARP announcing IPv4 `vip` at tslb's MAC (a new DR VIP). */
  announce(vip: number): void {
    this.sendArp(ARP_REQUEST, BCAST_HI, BCAST_LO, vip, 0, 0, vip);
  }

  /** Unsolicited NA (override) to all-nodes announcing an IPv6 DR VIP at tslb's MAC. */
  announce6(a0: number, a1: number, a2: number, a3: number): void {
    this.sendNa(a0, a1, a2, a3, -1, null, 0, 0, false);
  }

  private flush(i: number): void {
    const dv = this.qdv;
    for (let k = 0; k < this.qlen[i]; k++) {
      const q = i * QUEUE + k;
      const o = q * QUEUE_FRAME;
      ethWrite(dv, o, this.hi[i], this.lo[i], this.macHi, this.macLo, dv.getUint16(o + 12));
      this.dev.send(this.queue, o, this.qsize[q]);
    }
    this.qlen[i] = 0;
  }

  /** One ARP frame to Ethernet (dstHi:dstLo), sender tslb's MAC and `spa`, target (thaHi:thaLo, tpa). */
  private sendArp(op: number, dstHi: number, dstLo: number, spa: number, thaHi: number, thaLo: number, tpa: number): void {
    const f = this.scratch;
    ethWrite(f.dv, 0, dstHi, dstLo, this.macHi, this.macLo, ETHERTYPE_ARP);
    arpWrite(f.dv, ETH_HDR_LEN, op, this.macHi, this.macLo, spa, thaHi, thaLo, tpa);
    // Minimum Ethernet payload is 46 bytes: pad with zeros.
    f.u8.fill(0, ETH_HDR_LEN + 28, 60);
    this.dev.send(f.u8, 0, 60);
    this.arpSent++;
  }

  /** The IPv6 header of an NDP message: hop limit 255 (RFC 4861 §7.1), next header ICMPv6. */
  private ip6Header(o: number, payload: number): void {
    const dv = this.scratch.dv;
    dv.setUint32(o, 0x60000000);
    dv.setUint16(o + 4, payload);
    dv.setUint8(o + 6, 58);
    dv.setUint8(o + 7, 255);
  }

  private icmp6Csum(ip6: number, icmp: number, len: number): void {
    const f = this.scratch;
    f.dv.setUint16(icmp + 2, 0);
    const acc = csumAdd(f.u8, ip6 + IPV6_SRC, 32, 0) + 58 + len;
    f.dv.setUint16(icmp + 2, ~csumFold(csumAdd(f.u8, icmp, len, acc)) & 0xffff);
  }

  /** NS from :: for target t, to its solicited-node multicast group (ff02::1:ffXX:XXXX). */
  private sendNs(t0: number, t1: number, t2: number, t3: number): void {
    const f = this.scratch;
    const dv = f.dv;
    const low24 = t3 & 0xffffff;
    ethWrite(dv, 0, 0x3333, (0xff000000 | low24) | 0, this.macHi, this.macLo, ETHERTYPE_IPV6);
    const ip6 = ETH_HDR_LEN;
    this.ip6Header(ip6, 24);
    for (let w = 0; w < 4; w++) dv.setInt32(ip6 + IPV6_SRC + w * 4, 0);
    dv.setInt32(ip6 + IPV6_DST, 0xff020000 | 0); dv.setInt32(ip6 + IPV6_DST + 4, 0);
    dv.setInt32(ip6 + IPV6_DST + 8, 1); dv.setInt32(ip6 + IPV6_DST + 12, (0xff000000 | low24) | 0);
    const icmp = ip6 + IPV6_HDR_LEN;
    dv.setUint32(icmp, NDP_NS << 24);
    dv.setUint32(icmp + 4, 0);
    dv.setInt32(icmp + 8, t0); dv.setInt32(icmp + 12, t1); dv.setInt32(icmp + 16, t2); dv.setInt32(icmp + 20, t3);
    // No source link-layer option: it is forbidden with an unspecified source.
    this.icmp6Csum(ip6, icmp, 24);
    this.dev.send(f.u8, 0, icmp + 24);
    this.arpSent++;
  }

  /**
   * NA for target t (a VIP) with tslb's MAC, from the VIP itself, to the address at
   * `dstAt` in frame `src` (Ethernet dstHi:dstLo) — or, with dstAt -1, to all-nodes.
   */
  private sendNa(t0: number, t1: number, t2: number, t3: number, dstAt: number, src: Frame | null, dstHi: number, dstLo: number, solicited: boolean): void {
    const f = this.scratch;
    const dv = f.dv;
    const all = dstAt < 0 || src === null;
    ethWrite(dv, 0, all ? 0x3333 : dstHi, all ? 1 : dstLo, this.macHi, this.macLo, ETHERTYPE_IPV6);
    const ip6 = ETH_HDR_LEN;
    this.ip6Header(ip6, 32);
    dv.setInt32(ip6 + IPV6_SRC, t0); dv.setInt32(ip6 + IPV6_SRC + 4, t1); dv.setInt32(ip6 + IPV6_SRC + 8, t2); dv.setInt32(ip6 + IPV6_SRC + 12, t3);
    if (all) {
      dv.setInt32(ip6 + IPV6_DST, 0xff020000 | 0); dv.setInt32(ip6 + IPV6_DST + 4, 0);
      dv.setInt32(ip6 + IPV6_DST + 8, 0); dv.setInt32(ip6 + IPV6_DST + 12, 1);
    } else {
      for (let w = 0; w < 4; w++) dv.setInt32(ip6 + IPV6_DST + w * 4, src!.dv.getInt32(dstAt + w * 4));
    }
    const icmp = ip6 + IPV6_HDR_LEN;
    dv.setUint32(icmp, NDP_NA << 24);
    dv.setUint32(icmp + 4, (solicited ? NA_SOLICITED : 0) | NA_OVERRIDE);
    dv.setInt32(icmp + 8, t0); dv.setInt32(icmp + 12, t1); dv.setInt32(icmp + 16, t2); dv.setInt32(icmp + 20, t3);
    ndpWriteLla(dv, icmp + 24, NDP_OPT_TLLA, this.macHi, this.macLo);
    this.icmp6Csum(ip6, icmp, 32);
    this.dev.send(f.u8, 0, icmp + 32);
    this.arpSent++;
  }
}

